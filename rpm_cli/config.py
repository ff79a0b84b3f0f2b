"""The tables of key domains of `rpm train`, `rpm evaluate` and `rpm figures`, and validation before any work.

Every key a user can set has one entry in DOMAINS: the rule in words (the error message and the README's
list are made from it) and a predicate. A value passes only when it is in its domain: numbers finite, integers
in a range numpy and torch accept, strings from their set, booleans real booleans. Keys whose domain depends
on another key (the batch size on the video length, ...) say so in their rule.
"""
import difflib

from omegaconf import DictConfig, OmegaConf

from rpm_cli.domains import BOOLEAN, SEED, Domain, integer, is_int, is_num, number, one_of, require
from rpm_cli.errors import UserError

MAX_BALLS = 8  # slot matching is exhaustive over permutations
MIN_IMAGE_SIZE = 16
MAX_IMAGE_SIZE = 4096
MAX_FRAMES = 1_000_000
MAX_MEMORY_GB = 1_000_000  # a petabyte: a budget above it is a typo, not a machine


def _now(c, key: str, expression=lambda v: v) -> str:
    """` (value)` of a key a rule depends on, for an error message; nothing for the README (c is None)."""
    return "" if c is None else f" ({expression(OmegaConf.select(c, key))})"


DOMAINS: dict[str, Domain] = {
    "seed": SEED,
    "evaluate": BOOLEAN,
    "sweep_metric": one_of("auto", "slot_l2_px", "readout_l2_px", "loss"),
    "debug": BOOLEAN,
    "max_memory_gb": Domain(lambda c: f"a number of GB > 0 and <= {MAX_MEMORY_GB} or null (null: the memory available)",
                            lambda v, c: v is None or (is_num(v) and 0 < v <= MAX_MEMORY_GB)),
    "data.image_size": integer(MIN_IMAGE_SIZE, MAX_IMAGE_SIZE),
    "data.n_balls": integer(1, MAX_BALLS),
    "data.n_frames": integer(3, MAX_FRAMES),
    "data.val_frames": integer(3, MAX_FRAMES),
    "data.test_frames": integer(3, MAX_FRAMES),
    "data.ball_diameter": Domain(lambda c: "a number > 0 and < data.image_size" + _now(c, "data.image_size"),
                                 lambda v, c: is_num(v) and 0 < v < c.data.image_size),
    "data.step": Domain(lambda c: "a number > 0 and <= data.image_size" + _now(c, "data.image_size")
                        + " (pixels per frame)", lambda v, c: is_num(v) and 0 < v <= c.data.image_size),
    "data.heading_noise_deg": number(0, 180),
    "data.background": one_of("black", "white"),
    "data.antialias": BOOLEAN,
    "data.seed": SEED,
    "data.val_seed": Domain(lambda c: "an integer from 0 to 2**32 - 1, different from data.seed and data.test_seed",
                            lambda v, c: SEED.ok(v, c) and v not in (c.data.seed, c.data.test_seed)),
    "data.test_seed": Domain(lambda c: "an integer from 0 to 2**32 - 1, different from data.seed"
                                       + _now(c, "data.seed") + ", so the test video is held out",
                             lambda v, c: SEED.ok(v, c) and v != c.data.seed),
    "data.cache_dir": Domain(lambda c: "a directory path or null (no cache)",
                             lambda v, c: v is None or (isinstance(v, str) and v.strip() != "")),
    "encoder.name": one_of("com_cnn"),
    "encoder.hidden_channels": integer(1, 256),
    "encoder.n_maps": integer(1, MAX_BALLS),
    "encoder.map_bias_init": number(-50, 50),
    "encoder.skip_background": BOOLEAN,
    "encoder.latent_units": one_of("image", "pixels", "signed"),
    "objective.name": one_of("infonce", "supervised"),
    "trainer.optimizer": one_of("sgd", "adam"),
    "trainer.lr": number(0, 10, lo_open=True),
    "trainer.momentum": number(0, 1, hi_open=True),
    "trainer.epochs": integer(1, 100_000),
    "trainer.restarts": integer(1, 1000, " (1 = a single start)"),
    "trainer.restart_epochs": Domain(
        lambda c: "an integer from 1 to 100000, and to trainer.epochs - 1" + _now(c, "trainer.epochs", lambda v: v - 1)
        + " when trainer.restarts > 1",
        lambda v, c: is_int(v) and 1 <= v <= 100_000 and (c.trainer.restarts == 1 or v <= c.trainer.epochs - 1)),
    "trainer.batch_size": Domain(lambda c: "an integer from 2 to the number of pairs, data.n_frames - 1"
                                 + _now(c, "data.n_frames", lambda v: v - 1),
                                 lambda v, c: is_int(v) and 2 <= v <= c.data.n_frames - 1),
    "trainer.loss_reduction": one_of("mean", "sum"),
    "trainer.batchnorm_batch": one_of("joint", "separate"),
    "trainer.device": one_of("auto", "cpu", "cuda"),
    "trainer.threads": integer(0, 1024, " (0 = torch's default)"),
    "trainer.progress": BOOLEAN,
    "logger.name": one_of("jsonl", "tensorboard"),
}
# Order matters where a rule reads another key: data sizes before what depends on them.


PATH_OR_NULL = Domain(lambda c: "a path or null", lambda v, c: v is None or (isinstance(v, str) and v.strip() != ""))
# `rpm evaluate` and `rpm figures`: their own keys, checked the same way before any work.
EVALUATE_DOMAINS: dict[str, Domain] = {
    "run_dir": PATH_OR_NULL, "sweep_dir": PATH_OR_NULL, "force": BOOLEAN, "pictures": BOOLEAN,
    "batch_size": integer(1, 10_000),
    "debug": BOOLEAN,
}
FIGURES_DOMAINS: dict[str, Domain] = {
    "sweep_dir": PATH_OR_NULL, "run_dir": PATH_OR_NULL,
    "x_key": Domain(lambda c: "a swept key or null", lambda v, c: v is None or (isinstance(v, str) and v.strip() != "")),
    "reproduce_dir": Domain(lambda c: "a path", lambda v, c: isinstance(v, str) and v.strip() != ""),
    "preset": one_of("tuned", "paper"), "gaussian_run": PATH_OR_NULL, "linear_run": PATH_OR_NULL,
    "supervised_run": PATH_OR_NULL, "base_frame": integer(1, MAX_FRAMES), "debug": BOOLEAN,
}


def check(cfg: DictConfig, key: str, domains: dict[str, Domain] = DOMAINS) -> None:
    require(key, OmegaConf.select(cfg, key, throw_on_missing=False), domains[key], cfg)


def validate_data(cfg: DictConfig) -> None:
    from rpm_cli.data.balls import check_feasible

    for key in [k for k in DOMAINS if k.startswith("data.")]:
        check(cfg, key)
    d = cfg.data
    check_feasible(d.image_size, d.n_balls, d.ball_diameter, d.step)  # an InfeasibleVideo is a UserError


def check_resolves(cfg: DictConfig) -> None:
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except Exception as exc:  # an interpolation that does not resolve, e.g. ${data.nosuch}
        raise UserError(f"the config does not resolve: {str(exc).splitlines()[0]}") from None


def leaf_keys(node, prefix: str = "", stop=()):
    """Dotted paths of a config's values, without descending into the dicts whose path starts with `stop`."""
    for key, value in node.items_ex(resolve=False):
        path = f"{prefix}{key}"
        if OmegaConf.is_dict(value) and not path.startswith(stop):
            yield from leaf_keys(value, path + ".", stop)
        else:
            yield path


def refuse_unknown_keys(cfg: DictConfig, known, free=("prior.",)) -> None:
    """A key nothing reads (added with +key=value, say `+trainer.threadsx=1`) is a typo, not a setting.
    Keys under `free` belong to plug-ins, which check their own (a prior's constructor takes exactly its keys)."""
    for key in leaf_keys(cfg, stop=free):
        if key not in known and not key.startswith(free) and key != "hydra":
            close = difflib.get_close_matches(key, list(known), n=1)
            raise UserError(f"unknown key {key}: nothing reads it" + (f" (did you mean {close[0]}?)" if close else ""))


def validate_keys(cfg: DictConfig, domains: dict[str, Domain]) -> None:
    """`rpm evaluate` and `rpm figures`: every key resolves and lies in its domain, and none is unknown."""
    check_resolves(cfg)
    refuse_unknown_keys(cfg, domains, free=())
    for key in domains:
        check(cfg, key, domains)


def validate_train(cfg: DictConfig) -> None:
    """Raise UserError naming the first key whose value is outside its domain; then check the budget."""
    check_resolves(cfg)
    refuse_unknown_keys(cfg, {*DOMAINS, "prior", "resume"})
    for key in ("seed", "evaluate", "sweep_metric", "debug", "max_memory_gb"):
        check(cfg, key)
    validate_data(cfg)
    for section in ("encoder.", "objective.", "trainer.", "logger."):
        for key in [k for k in DOMAINS if k.startswith(section) and k != "trainer.batch_size"]:
            check(cfg, key)
    check(cfg, "trainer.batch_size")
    supervised = cfg.objective.name == "supervised"
    if supervised and cfg.get("prior") is not None:
        raise UserError("prior must be null with objective=supervised (the supervised baseline has no f_θ); "
                        f"got prior {cfg.prior.get('name')!r}")
    if not supervised and cfg.get("prior") is None:
        raise UserError("prior must be set with objective=infonce (e.g. prior=gaussian)")
    from rpm_cli.loggers import check_available

    check_available(cfg.logger.name)
    if not supervised:
        from rpm_cli.models.priors import build_prior

        build_prior(cfg.prior, dim=2 * cfg.encoder.n_maps, scale=cfg.data.image_size)  # its own checks, one line
    if cfg.trainer.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("trainer.device must be auto or cpu: no CUDA device is available (got 'cuda')")
    from rpm_cli.budget import check_budget

    check_budget(cfg)


def domain_table() -> str:
    """The README's list of `rpm train` keys and their domains, made from DOMAINS (tests keep the two equal)."""
    lines = ["| key | allowed values |", "|---|---|"]
    lines += [f"| `{key}` | {domain.describe(None)} |" for key, domain in DOMAINS.items()]
    return "\n".join(lines)

