"""The recipe study (configs/recipe_protocol.yaml): its seeds, which runs the baseline needs, and its report
section on run records built by hand."""
import json
from pathlib import Path

from rpm_cli import recipe_study, stats
from rpm_cli.recipe_study import (CHECK_SEEDS, CONFIRMATIONS, LATEST, RECIPE_PROTOCOL, RECIPE_SEEDS, baseline_seeds,
                                  extend_finished_runs, recipe_dir, sweeps)
from rpm_cli.report import recipe
from rpm_cli.reproduction import REPORTING_SEEDS, SPEED_SEEDS, SPENT_SEEDS, TUNING_SEEDS, prior_names

RESERVED = {*range(1, 10), *range(5000, 6000)}


def test_the_study_selects_on_tuning_seeds_and_confirms_on_seeds_no_role_has_used():
    assert len(RECIPE_SEEDS) == 25 and set(RECIPE_SEEDS) <= set(TUNING_SEEDS)
    used = {*TUNING_SEEDS, *REPORTING_SEEDS, *SPENT_SEEDS, *SPEED_SEEDS, *RESERVED}
    for seeds in CONFIRMATIONS.values():  # each frozen recipe's own fresh seeds
        assert len(seeds) == 25 and not set(seeds) & used
        used |= set(seeds)
    assert not set(CHECK_SEEDS) & used
    assert set(CONFIRMATIONS) <= set(RECIPE_PROTOCOL.candidates)
    assert set(recipe_study.study_priors()) <= set(prior_names())
    assert RECIPE_PROTOCOL.target.prior in RECIPE_PROTOCOL.selection_priors
    assert set(RECIPE_PROTOCOL.conditional) <= set(RECIPE_PROTOCOL.candidates)


def _metrics(run_dir: Path, reseeded: bool) -> None:
    run_dir.mkdir(parents=True)
    lines = [{"epoch": 3, "loss": 0.2}, {"epoch": 4, "loss": 0.1, **({"reseeded_maps": [1]} if reseeded else {})}]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (run_dir / "evaluation.json").write_text("{}")


def test_the_baseline_runs_where_the_conditional_candidate_fired_or_has_not_run(tmp_path):
    assert baseline_seeds(tmp_path, "gaussian") == list(RECIPE_SEEDS)  # nothing known yet: every seed
    for seed in RECIPE_SEEDS[:-1]:
        _metrics(recipe_dir(tmp_path, "reseed", "gaussian") / f"seed-{seed}", reseeded=seed in (12, 20))
    assert baseline_seeds(tmp_path, "gaussian") == [12, 20, RECIPE_SEEDS[-1]]  # the last has not run yet
    (recipe_dir(tmp_path, "reseed", "gaussian") / "seed-11" / "evaluation.json").unlink()  # killed, say
    assert baseline_seeds(tmp_path, "gaussian") == [11, 12, 20, RECIPE_SEEDS[-1]]
    (recipe_dir(tmp_path, "reseed", "gaussian") / "seed-11" / "evaluation.json").write_text("{}")
    (line,) = sweeps(tmp_path, "default", ["gaussian"])
    assert line.split()[:2] == ["gaussian", f"12,20,{RECIPE_SEEDS[-1]}"]
    # the recipe before any remedy, in the arithmetic the study's runs were trained with
    assert line.endswith("trainer.reseed_below=0 trainer.epochs=6 trainer.keep_from=0 encoder.kernels=torch")
    (line,) = sweeps(tmp_path, "reseed", ["gaussian"])
    assert line.split()[1] == ",".join(map(str, RECIPE_SEEDS)) and line.endswith("trainer.reseed_below=0.125 trainer.epochs=6 trainer.keep_from=0 encoder.kernels=torch")
    _metrics(recipe_dir(tmp_path, "reseed50", "gaussian") / "seed-30", reseeded=True)  # a second conditional
    assert baseline_seeds(tmp_path, "gaussian") == sorted({12, 20, 30, *RECIPE_SEEDS})  # its other seeds: not run
    assert baseline_seeds(tmp_path, "laplace") == list(RECIPE_SEEDS)


def _run(seed: int, tracked: bool, fired: bool = False, catastrophic: bool = False) -> dict:
    """A run record; a run that fires (re-seeds) had an empty map at its first check."""
    worst = 0.5 if tracked else (70.0 if catastrophic else 6.0)
    health = {"epoch": 2, "map_concentration": [0.05 if fired else 0.6 + seed / 1000, 0.9, 0.9]}
    return {"seed": seed, "fired": fired, "metrics": [{"epoch": 1}, health], "path": Path(f"run-{seed}"),
            "config": {"trainer": {"restarts": 5, "restart_epochs": 2, "reseed_below": 0.125}},
            "val": {"slot_matched_px": [0.3, 0.2, worst]}, "test": {"slot_matched_px": [0.3, 0.2, worst]}}


def test_the_section_pairs_each_candidate_with_the_baseline_and_borrows_runs_that_never_fired(monkeypatch, tmp_path):
    seeds = RECIPE_SEEDS
    failing = {seeds[3], seeds[7], seeds[9]}
    runs = {("default", "gaussian"): {s: _run(s, s not in failing, catastrophic=True) for s in failing},
            ("reseed", "gaussian"): {s: _run(s, s != seeds[9], fired=s in failing) for s in seeds},
            ("reseed", "laplace"): {s: _run(s, True) for s in seeds},
            ("recipe_confirmation", "gaussian"): {s: _run(s, s != CONFIRMATIONS["reseed"][0])
                                                  for s in CONFIRMATIONS["reseed"]}}

    def record(run_dir: Path):
        kind, candidate, prior = run_dir.parent.parent.parent.name, run_dir.parent.parent.name, run_dir.parent.name
        key = ("recipe_confirmation", prior) if kind == "recipe_confirmation" and candidate == "reseed" else (candidate, prior)
        return runs.get(key, {}).get(int(run_dir.name[5:])) if kind in ("recipe", "recipe_confirmation") else None

    monkeypatch.setattr(recipe, "_record", record)
    found = recipe.collect_recipes("outputs/x")
    baseline = found["default"]["gaussian"]
    assert len(baseline) == 25 and sum(bool(r.get("borrowed")) for r in baseline.values()) == 22
    assert recipe._paired(found["reseed"]["gaussian"], baseline) == (25, 2, 0, stats.mcnemar_exact(2, 0))
    monkeypatch.setattr(recipe, "draw_health", lambda *args: None)
    drawn = {}
    monkeypatch.setattr(recipe, "draw_failure_maps", lambda pairs, path: drawn.setdefault("pairs", pairs) and None)
    monkeypatch.setattr(recipe, "draw_paired_worst", lambda points, *args: drawn.setdefault("points", points) and None)
    text = recipe.recipe_section("outputs/x")
    # the last candidate against the recipe it is compared with, seed by seed, per selection prior
    assert sorted(drawn["points"]) == ["gaussian", "laplace"] and len(drawn["points"]["gaussian"]) == 25
    assert drawn["points"]["gaussian"][9] == (70.0, 6.0)  # seeds[9]: catastrophic under default, marginal after
    labels = [label for label, _ in drawn["pairs"]]  # each catastrophic baseline run beside the candidate's
    assert len(labels) == 6 and labels[0].startswith(f"gaussian seed {seeds[3]}, default: worst ball 70.0")
    assert labels[5].startswith(f"gaussian seed {seeds[9]}, reseed: worst ball 6.0")
    rows = [line for line in text.splitlines() if line.startswith("| gaussian |")]
    assert rows[0].startswith("| gaussian | default | 25 | 22/25 | 88% [") and "22 read from a run" in rows[0]
    assert rows[1].startswith("| gaussian | reseed | 25 | 24/25 | 96% [") and "| 3 | 2 / 0 / 0.5 (n = 25) |" in rows[1]
    assert all(line.count("|") == 9 for line in rows)
    shows = next(line for line in text.splitlines() if line.startswith("- gaussian: catastrophic"))
    assert shows == f"- gaussian: catastrophic baseline seeds 0.050, 0.050, 0.050; seeds where the baseline tracked every " \
        f"ball: lowest {0.6 + seeds[0] / 1000:.3f} (n = 22)"
    confirmed = next(line for line in text.splitlines() if line.startswith("**Confirmed once**"))
    assert "after `reseed` was frozen" in confirmed and "(trainer.reseed_below=0.125 trainer.epochs=6" in confirmed
    assert "every ball tracked on 24/25, 96% [" in confirmed
    assert "against 24/25, 96% [" in confirmed and "within the tuning interval (Fisher p = 1)" in confirmed
    written = recipe.write_recipe_report(tmp_path)  # its own file, the section under a title
    assert written == tmp_path / "RECIPE.md" and written.read_text().startswith("# A default that works on every seed")
    assert rows[0] in written.read_text()
    pooled = next(line for line in text.splitlines() if line.startswith("- `reseed`"))
    assert "49/50 against 47/50 for `default`" in pooled and "worst ball, median 0.50 px against 0.50 px" in pooled
    assert "; gaussian, laplace)" in pooled and f"p = {stats.mcnemar_exact(2, 0):.3g}, n = 50" in pooled


def test_no_study_runs_no_recipe_report(tmp_path):
    assert recipe.write_recipe_report(tmp_path) is None and not (tmp_path / "RECIPE.md").exists()


def test_the_confirmation_runs_the_committed_default_on_the_last_frozen_recipes_seeds(tmp_path):
    lines = sweeps(tmp_path, recipe_study.CONFIRMATION, ["gaussian", "laplace"])
    # the target prior, in the arithmetic the committed confirmation runs were trained with
    assert all(line.split()[0] == RECIPE_PROTOCOL.target.prior and line.split()[3:] == [recipe_study.ARITHMETIC]
               for line in lines)
    assert all(line.split()[2].endswith(f"recipe_confirmation/{LATEST}/gaussian") for line in lines)
    seeds = [int(s) for line in lines for s in line.split()[1].split(",")]
    assert seeds == list(CONFIRMATIONS[LATEST])


def test_an_extending_candidate_starts_from_copies_of_the_finished_runs_it_extends(tmp_path):
    extending = next(c for c, spec in RECIPE_PROTOCOL.candidates.items() if spec.get("extends"))
    base = RECIPE_PROTOCOL.candidates[extending].extends
    _metrics(recipe_dir(tmp_path, base, "gaussian") / f"seed-{RECIPE_SEEDS[0]}", reseeded=False)
    unfinished = recipe_dir(tmp_path, base, "gaussian") / f"seed-{RECIPE_SEEDS[1]}"
    _metrics(unfinished, reseeded=False)
    (unfinished / "evaluation.json").unlink()
    extend_finished_runs(tmp_path, extending, "gaussian")
    copied = sorted(p.name for p in recipe_dir(tmp_path, extending, "gaussian").iterdir())
    assert copied == [f"seed-{RECIPE_SEEDS[0]}"]  # the unfinished one trains from the start in the sweep
    run = recipe_dir(tmp_path, extending, "gaussian") / copied[0]
    assert (run / "metrics.jsonl").exists() and not (run / "evaluation.json").exists()  # evaluated again when extended
    extend_finished_runs(tmp_path, extending, "gaussian")  # copies once: an extended run is never replaced
    assert sorted(p.name for p in recipe_dir(tmp_path, extending, "gaussian").iterdir()) == copied


def test_the_report_names_the_registered_recipe_and_any_tuned_run_trained_otherwise():
    from omegaconf import OmegaConf

    from rpm_cli import CONFIG_DIR
    from rpm_cli.report.reproduction import _recipe_note
    from rpm_cli.reproduction import study_pins

    pins = study_pins("tuned")
    assert pins == {"reseed_below": 0, "epochs": 6, "keep_from": 0}  # trainer=tuned as the study ran it
    today = OmegaConf.load(CONFIG_DIR / "trainer" / "tuned.yaml").trainer
    runs = [{"config": {"trainer": trainer}} for trainer in (pins, {**pins, "reseed_below": 0.7},
                                                             {**pins, "reseed_below": 0.7})]
    assert _recipe_note({"paper": {"gaussian": runs}}) == ""
    alone = _recipe_note({"tuned": {"gaussian": runs[:1]}})
    assert "trainer.epochs=6" in alone and f"epochs={today.epochs}" in alone and "trained otherwise" not in alone
    line = _recipe_note({"tuned": {"gaussian": runs}, "paper": {"gaussian": runs}})
    assert "2 of the tuned runs above were trained otherwise" in line and "reseed_below=0.7" in line
    old = {"config": {"trainer": {"reseed_below": 0.0, "epochs": 6}}}  # before keep_from existed: 0, as pinned
    assert "trained otherwise" not in _recipe_note({"tuned": {"gaussian": [old]}})


def test_the_paired_precision_picture_is_drawn_from_its_points_and_skipped_without_any(tmp_path):
    from rpm_cli.figures.health import draw_paired_worst

    assert draw_paired_worst({"gaussian": []}, tmp_path / "none.png", 5.0, ("a", "b")) is None
    path = draw_paired_worst({"gaussian": [(5.2, 3.6), (0.3, 0.2)], "laplace": [(40.0, 1.5)]}, tmp_path / "p.png",
                             5.0, ("reseed", "leastleak"))
    assert path == tmp_path / "p.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
