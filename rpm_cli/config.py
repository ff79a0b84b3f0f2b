"""Resolvers the configs use, and validation of every key that has a domain, run before any work."""
import re

from omegaconf import DictConfig, OmegaConf

from rpm_cli.errors import UserError

OPTIMIZERS = ("sgd", "adam")
OBJECTIVES = ("infonce", "supervised")
REDUCTIONS = ("mean", "sum")
DEVICES = ("auto", "cpu", "cuda")
SWEEP_METRICS = ("auto", "slot_l2_px", "readout_l2_px", "loss")
PRIORS = ("gaussian", "linear")
MAX_BALLS = 8  # slot matching is exhaustive over permutations
MIN_IMAGE_SIZE = 16


def _sweep_subdir(override_dirname: str, seed) -> str:
    # Readable and unique per job: the overrides, then the seed (always, even when not swept).
    name = re.sub(r"[/\\]", "-", override_dirname)
    return f"{name}_seed-{seed}" if name else f"seed-{seed}"


def register_resolvers() -> None:
    resolvers = {
        "rpm_run_dir": lambda resume, default: str(resume) if resume else default,
        # A resumed run writes its own Hydra record beside the original, which stays untouched.
        "rpm_hydra_subdir": lambda resume: ".hydra-resume" if resume else ".hydra",
        "rpm_sweep_subdir": _sweep_subdir,
    }
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


register_resolvers()


def _get(cfg, key):
    return OmegaConf.select(cfg, key, throw_on_missing=False)


def check(cfg: DictConfig, key: str, ok, rule: str) -> None:
    value = _get(cfg, key)
    try:
        good = ok(value)
    except TypeError:
        good = False
    if not good:
        raise UserError(f"{key} must be {rule} (got {value!r})")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def one_of(options):
    return lambda v: v in options, "one of: " + ", ".join(map(str, options))


def validate_data(cfg: DictConfig) -> None:
    check(cfg, "data.image_size", lambda v: _is_int(v) and v >= MIN_IMAGE_SIZE, f"an integer >= {MIN_IMAGE_SIZE}")
    check(cfg, "data.n_balls", lambda v: _is_int(v) and 1 <= v <= MAX_BALLS, f"an integer from 1 to {MAX_BALLS}")
    check(cfg, "data.n_frames", lambda v: _is_int(v) and v >= 3, "an integer >= 3")
    check(cfg, "data.test_frames", lambda v: _is_int(v) and v >= 3, "an integer >= 3")
    check(cfg, "data.ball_diameter", lambda v: _is_num(v) and 0 < v < cfg.data.image_size,
          f"a number > 0 and < data.image_size ({cfg.data.image_size})")
    check(cfg, "data.step", lambda v: _is_num(v) and v > 0, "a number > 0 (pixels per frame)")
    check(cfg, "data.heading_noise_deg", lambda v: _is_num(v) and 0 <= v <= 180, "a number from 0 to 180")
    check(cfg, "data.seed", _is_int, "an integer")
    check(cfg, "data.test_seed", lambda v: _is_int(v) and v != cfg.data.seed,
          f"an integer different from data.seed ({cfg.data.seed}), so the test video is held out")
    d, size, n = cfg.data.ball_diameter, cfg.data.image_size, cfg.data.n_balls
    if n * d**2 > 0.5 * size**2:
        raise UserError(f"data.n_balls ({n}) balls of data.ball_diameter {d} do not fit in a {size}x{size} "
                        f"frame: their squares must cover at most half of it")


def validate_train(cfg: DictConfig) -> None:
    """Raise UserError naming the first key whose value is outside its domain."""
    check(cfg, "seed", _is_int, "an integer")
    validate_data(cfg)
    check(cfg, "encoder.name", *one_of(("com_cnn",)))
    check(cfg, "encoder.hidden_channels", lambda v: _is_int(v) and v >= 1, "an integer >= 1")
    check(cfg, "encoder.n_maps", lambda v: _is_int(v) and 1 <= v <= MAX_BALLS, f"an integer from 1 to {MAX_BALLS}")
    check(cfg, "encoder.map_bias_init", _is_num, "a number")
    check(cfg, "encoder.skip_background", lambda v: isinstance(v, bool), "true or false")
    check(cfg, "prior.name", *one_of(PRIORS))
    if cfg.prior.name == "gaussian":
        check(cfg, "prior.lengthscale", lambda v: _is_num(v) and v > 0, "> 0")
        check(cfg, "prior.learn_lengthscale", lambda v: isinstance(v, bool), "true or false")
    else:
        check(cfg, "prior.init_std", lambda v: _is_num(v) and v >= 0, ">= 0")
    t = "trainer"
    check(cfg, f"{t}.objective", *one_of(OBJECTIVES))
    check(cfg, f"{t}.optimizer", *one_of(OPTIMIZERS))
    check(cfg, f"{t}.lr", lambda v: _is_num(v) and v > 0, "> 0")
    check(cfg, f"{t}.momentum", lambda v: _is_num(v) and 0 <= v < 1, "in [0, 1)")
    check(cfg, f"{t}.epochs", lambda v: _is_int(v) and v >= 1, "an integer >= 1")
    check(cfg, f"{t}.restarts", lambda v: _is_int(v) and v >= 1, "an integer >= 1 (1 = a single start)")
    if cfg.trainer.restarts > 1:
        last = cfg.trainer.epochs - 1
        check(cfg, f"{t}.restart_epochs", lambda v: _is_int(v) and 1 <= v <= last,
              f"an integer from 1 to trainer.epochs - 1 ({last}) when trainer.restarts > 1")
    n_pairs = cfg.data.n_frames - 1
    check(cfg, f"{t}.batch_size", lambda v: _is_int(v) and 2 <= v <= n_pairs,
          f"an integer from 2 to the number of pairs ({n_pairs} = data.n_frames - 1)")
    check(cfg, f"{t}.loss_reduction", *one_of(REDUCTIONS))
    check(cfg, f"{t}.device", *one_of(DEVICES))
    check(cfg, f"{t}.threads", lambda v: _is_int(v) and v >= 0, "an integer >= 0 (0 = torch's default)")
    check(cfg, f"{t}.progress", lambda v: isinstance(v, bool), "true or false")
    check(cfg, "evaluate", lambda v: isinstance(v, bool), "true or false")
    check(cfg, "sweep_metric", *one_of(SWEEP_METRICS))
    if cfg.trainer.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("trainer.device is cuda but no CUDA device is available (use auto or cpu)")
