"""The pre-registration (configs/protocol.yaml): seed roles that never overlap, and what the study fixes."""
from rpm_cli import reproduction
from rpm_cli.reproduction import PROTOCOL, REPORTING_SEEDS, SPEED_SEEDS, SPENT_SEEDS, TUNING_SEEDS

RESERVED = {*range(1, 10), *range(5000, 6000)}  # independent checks of this project


def test_seed_roles_are_disjoint_and_avoid_the_reserved_seeds():
    roles = {"reporting": REPORTING_SEEDS, "tuning": TUNING_SEEDS, "spent": SPENT_SEEDS, "speed": SPEED_SEEDS}
    for name, seeds in roles.items():
        assert len(set(seeds)) == len(seeds) and not set(seeds) & RESERVED, name
        for other, others in roles.items():
            assert other == name or not set(seeds) & set(others), (name, other)


def test_the_study_has_the_registered_number_of_fresh_seeds_and_every_method():
    assert len(REPORTING_SEEDS) == PROTOCOL.n_seeds == 25
    assert set(PROTOCOL.arms) == set(reproduction.all_methods())
    assert PROTOCOL.appendix_d.n_seeds <= PROTOCOL.n_seeds


def test_no_planned_ablation_uses_a_reporting_seed():
    for sweep in reproduction.ablation_plan(reproduction.ABLATION_PARTS, recipes=tuple(reproduction.PRESETS),
                                            priors=reproduction.prior_names()):
        (value,) = [o.removeprefix("seed=") for o in sweep.overrides.split() if o.startswith("seed=")]
        assert not {int(s) for s in value.split(",")} & set(REPORTING_SEEDS), sweep.name


def test_the_registered_threshold_is_the_one_evaluation_counts_tracked_balls_by():
    from rpm_cli.readout import TRACKED_PX

    assert PROTOCOL.primary_endpoint.threshold_px == TRACKED_PX  # evaluation.json's balls_tracked uses it


def test_the_rpm_study_registers_arms_that_objective_rpm_can_train():
    from rpm_cli.models.objectives.posteriors import POSTERIORS
    from rpm_cli.models.priors import REGISTRY, ClosedFormZ
    from rpm_cli.reproduction import REPORTING_SEEDS, RPM_PROTOCOL

    assert 1 <= RPM_PROTOCOL.n_seeds <= len(REPORTING_SEEDS)
    assert set(RPM_PROTOCOL.posteriors) <= set(POSTERIORS)
    assert all(issubclass(REGISTRY[p], ClosedFormZ) for p in RPM_PROTOCOL.priors)


def test_the_study_trains_each_preset_with_its_registered_recipe_not_todays_default(capsys):
    from omegaconf import OmegaConf

    from rpm_cli import CONFIG_DIR

    assert set(reproduction.STUDY_RECIPES) == set(reproduction.PRESETS)
    for preset, recipe in reproduction.STUDY_RECIPES.items():
        assert recipe.split()[0] == reproduction.PRESETS[preset]  # today's preset, plus pins only
    tuned = OmegaConf.load(CONFIG_DIR / "trainer" / "tuned.yaml").trainer
    assert set(reproduction.study_pins("tuned")) <= set(tuned)  # each pin names a key the recipe has
    reproduction.main(["out", "--presets", "tuned", "--methods", "gaussian", "--seeds", "300 301", "--by-method"])
    (line,) = capsys.readouterr().out.splitlines()
    assert line.split()[:4] == ["tuned", "gaussian", "300,301", "out/tuned/gaussian"]
    assert " ".join(line.split()[4:]) == f"{reproduction.STUDY_RECIPES['tuned']} prior=gaussian"


def test_the_pinned_recipe_composes_to_the_recipe_the_study_ran_with():
    """trainer=tuned, the encoder and the Gaussian prior as committed at the registration (3c347b7), the keys
    added since at the values that leave them off: a later change to any of them must not move the study."""
    from omegaconf import OmegaConf

    from tests.helpers import compose_cfg

    cfg = compose_cfg([*reproduction.STUDY_RECIPES["tuned"].split(), "prior=gaussian"], base=())
    trainer = {"optimizer": "adam", "lr": 0.02, "momentum": 0.0, "epochs": 6, "restarts": 5, "restart_epochs": 2,
               "reseed_below": 0, "keep_from": 0, "batch_size": 30, "loss_reduction": "mean",
               "batchnorm_batch": "joint", "device": "auto", "threads": 0, "progress": True}
    assert OmegaConf.to_container(cfg.trainer) == trainer
    encoder = {"name": "com_cnn", "hidden_channels": 6, "n_maps": 3, "map_bias_init": -6.0, "skip_background": True,
               "latent_units": "image", "kernels": "torch"}
    assert {key: cfg.encoder[key] for key in encoder} == encoder
    assert (cfg.prior.lengthscale, cfg.prior.learn_lengthscale, cfg.objective.name) == (32, True, "infonce")
    assert (cfg.data.n_frames, cfg.data.image_size, cfg.data.n_balls, cfg.data.ball_diameter) == (900, 256, 3, 32)


def test_the_recipe_studys_baseline_is_the_registered_studys_recipe():
    # Two layers that may not import each other name the same recipe (the default before any remedy).
    from rpm_cli.recipe_study import ARITHMETIC, BASELINE_OVERRIDES

    assert reproduction.STUDY_RECIPES["tuned"] == f"trainer=tuned {BASELINE_OVERRIDES} {ARITHMETIC}"
