"""The tables of key domains of `rpm train`, `rpm evaluate` and `rpm figures`, and validation before any work.

Every framework key has one entry in DOMAINS, and each dataset and encoder states its own keys' domains
(`train_domains` gives a config's all): the rule in words (the error message and the README's list are made
from it) and a predicate. A value passes only when it is in its domain: numbers finite, integers
in a range numpy and torch accept, strings from their set, booleans real booleans. Keys whose domain depends
on another key (the batch size on the video length, ...) say so in their rule.
"""
import difflib

from omegaconf import DictConfig, OmegaConf

from rpm_cli.domains import BOOLEAN, SEED, Domain, integer, is_int, is_num, now, number, one_of, require
from rpm_cli.data.base import PRIOR_LENGTHSCALE
from rpm_cli.errors import UserError

MAX_FRAMES = 1_000_000
MAX_MEMORY_GB = 1_000_000  # a petabyte: a budget above it is a typo, not a machine
SWEEP_METRICS = ("auto", "loss", "slot_l2_px", "readout_l2_px", "r2", "mcc")


def _training_pairs(c) -> int:
    from rpm_cli.data.build import dataset_class

    return dataset_class(c.data).training_pairs(c.data)


def _pairs_key(c) -> str:
    from rpm_cli.data.build import dataset_class

    return dataset_class(c.data).pairs_key


DOMAINS: dict[str, Domain] = {
    "seed": SEED,
    "evaluate": BOOLEAN,
    "sweep_metric": one_of(*SWEEP_METRICS),
    "debug": BOOLEAN,
    "max_memory_gb": Domain(lambda c: f"a number of GB > 0 and <= {MAX_MEMORY_GB} or null (null: the memory available)",
                            lambda v, c: v is None or (is_num(v) and 0 < v <= MAX_MEMORY_GB)),
    "trainer.optimizer": one_of("sgd", "adam"),
    "trainer.lr": number(0, 10, lo_open=True),
    "trainer.momentum": number(0, 1, hi_open=True),
    "trainer.epochs": integer(1, 100_000),
    "trainer.restarts": integer(1, 1000, " (1 = a single start)"),
    "trainer.restart_epochs": Domain(
        lambda c: "an integer from 1 to 100000, and to trainer.epochs - 1" + now(c, "trainer.epochs", lambda v: v - 1)
        + " when trainer.restarts > 1",
        lambda v, c: is_int(v) and 1 <= v <= 100_000 and (c.trainer.restarts == 1 or v <= c.trainer.epochs - 1)),
    "trainer.reseed_below": number(0, 1),
    "trainer.keep_from": Domain(
        lambda c: "0 (off) or an integer from 1 to trainer.epochs" + now(c, "trainer.epochs")
        + ", after trainer.restart_epochs when trainer.restarts > 1",
        lambda v, c: is_int(v) and (v == 0 or (1 <= v <= c.trainer.epochs
                                               and (c.trainer.restarts == 1 or v > c.trainer.restart_epochs)))),
    "trainer.batch_size": Domain(lambda c: "an integer from 2 to the number of training pairs"
                                 + ("" if c is None else f", {_pairs_key(c)} ({_training_pairs(c)})"),
                                 lambda v, c: is_int(v) and 2 <= v <= _training_pairs(c)),
    "trainer.loss_reduction": one_of("mean", "sum"),
    "trainer.batchnorm_batch": one_of("joint", "separate"),
    "trainer.device": one_of("auto", "cpu", "cuda"),
    "trainer.threads": integer(0, 1024, " (0 = torch's default)"),
    "trainer.progress": BOOLEAN,
    "logger.name": one_of("jsonl", "tensorboard"),
}
# The framework's keys. Each dataset (`data.*`) and encoder (`encoder.*`) states its own keys' domains
# (rpm_cli/data/, rpm_cli/models/); validate_train checks those too, in the same words.


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


def check_plugin_section(cfg: DictConfig, section: str, cls, common=()) -> None:
    """A plug-in section (data, encoder): no key its class does not take, each key in its domain."""
    known = {"_target_", "name", *common, *cls.keys}
    for key in cfg[section]:
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            raise UserError(f"unknown key {section}.{key}: {cls.__name__} does not read it"
                            + (f" (did you mean {section}.{close[0]}?)" if close else ""))


def validate_data(cfg: DictConfig):
    """The dataset's keys, each in its domain, then the rules over several (a video that cannot be made)."""
    from rpm_cli.data.build import dataset_class

    cls = dataset_class(cfg.data)
    check_plugin_section(cfg, "data", cls, common=("prior_lengthscale",))
    cls.check(cfg)
    return cls


def validate_encoder(cfg: DictConfig, dataset_cls) -> None:
    from rpm_cli.models.build import check_reads, encoder_class

    cls = encoder_class(cfg.encoder)
    check_plugin_section(cfg, "encoder", cls)
    for key, domain in cls.keys.items():
        require(f"encoder.{key}", cfg.encoder.get(key), domain, cfg)
    check_reads(cls, dataset_cls)


def validate_objective(cfg: DictConfig):
    """The objective's keys (its constructor checks each, in one line) and whether a prior is set as it needs."""
    from rpm_cli.models.objectives import build_objective, require_prior

    if not OmegaConf.is_dict(cfg.get("objective")):
        raise UserError("objective must be a config group option such as objective=infonce")
    objective = build_objective(cfg.objective, reduction=cfg.trainer.loss_reduction)
    require_prior(objective, cfg.get("prior"))
    return objective


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


def refuse_unknown_keys(cfg: DictConfig, known, free=("prior.", "data.", "encoder.", "objective.")) -> None:
    """A key nothing reads (added with +key=value, say `+trainer.threadsx=1`) is a typo, not a setting.
    Keys under `free` belong to plug-ins, which check their own (a plug-in's constructor takes exactly its keys)."""
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


def check_pairing(cfg: DictConfig) -> None:
    """An encoder that cannot read the dataset's observations, said before the keys of one are read against
    the other (com_cnn's `${data.n_balls}` does not resolve under data=clica)."""
    from rpm_cli.data.build import dataset_class
    from rpm_cli.models.build import check_reads, encoder_class

    targets = [OmegaConf.select(cfg, f"{s}._target_", default=None, throw_on_resolution_failure=False)
               for s in ("data", "encoder")]
    if all(isinstance(t, str) for t in targets):
        check_reads(encoder_class({"_target_": targets[1]}), dataset_class({"_target_": targets[0]}))


def validate_train(cfg: DictConfig) -> None:
    """Raise UserError naming the first key whose value is outside its domain; then check the budget."""
    check_pairing(cfg)
    check_resolves(cfg)
    refuse_unknown_keys(cfg, {*DOMAINS, "prior", "objective", "resume"})
    for key in ("seed", "evaluate", "sweep_metric", "debug", "max_memory_gb"):
        check(cfg, key)
    dataset_cls = validate_data(cfg)
    validate_encoder(cfg, dataset_cls)
    for section in ("objective.", "trainer.", "logger."):
        for key in [k for k in DOMAINS if k.startswith(section) and k != "trainer.batch_size"]:
            check(cfg, key)
    check(cfg, "trainer.batch_size")
    objective = validate_objective(cfg)
    from rpm_cli.loggers import check_available

    check_available(cfg.logger.name)
    if cfg.sweep_metric not in ("auto", "loss") and cfg.sweep_metric not in dict(dataset_cls.table):
        raise UserError(f"sweep_metric must be auto, loss or a score data={dataset_cls.name} reports: "
                        f"{', '.join(dict(dataset_cls.table))} (got {cfg.sweep_metric!r})")
    if objective.has_prior:
        from rpm_cli.data.build import build_dataset
        from rpm_cli.models.build import build_encoder
        from rpm_cli.models.priors import build_prior

        dataset = build_dataset(cfg.data)
        encoder = build_encoder(cfg.encoder, dataset)
        a, _ = encoder.latent_affine(dataset.length_unit)
        # Its own checks, one line; then whether the objective can train it.
        objective.check_prior(build_prior(cfg.prior, dim=encoder.latent_dim, scale=dataset.length_unit / a))
    if cfg.trainer.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("trainer.device must be auto or cpu: no CUDA device is available (got 'cuda')")
    from rpm_cli.budget import check_budget

    check_budget(cfg)


def plugin_domains(section: str, cls) -> dict[str, Domain]:
    common = {"prior_lengthscale": PRIOR_LENGTHSCALE} if section == "data" else {}
    return {f"{section}.{key}": domain for key, domain in {**common, **cls.keys}.items()}


def train_domains(cfg: DictConfig) -> dict[str, Domain]:
    """Every key of this config's `rpm train` with its domain: the framework's, its dataset's, encoder's and
    objective's."""
    from rpm_cli.data.build import dataset_class
    from rpm_cli.models.build import encoder_class
    from rpm_cli.models.objectives import objective_class

    return {**DOMAINS, **plugin_domains("data", dataset_class(cfg.data)),
            **plugin_domains("encoder", encoder_class(cfg.encoder)),
            **plugin_domains("objective", objective_class(cfg.objective))}


def domain_table() -> str:
    """The README's list of `rpm train` keys and their domains, made from DOMAINS and each dataset's and
    encoder's own (tests keep the two equal)."""
    from rpm_cli.data.build import REGISTRY as DATASETS
    from rpm_cli.models.build import REGISTRY as ENCODERS
    from rpm_cli.models.objectives import REGISTRY as OBJECTIVES

    lines = ["| key | allowed values |", "|---|---|"]
    lines += [f"| `{key}` | {domain.describe(None)} |" for key, domain in DOMAINS.items()]
    for section, registry in (("data", DATASETS), ("encoder", ENCODERS), ("objective", OBJECTIVES)):
        for name, cls in registry.items():
            lines += [f"| `{key}` ({section}={name}) | {domain.describe(None)} |"
                      for key, domain in plugin_domains(section, cls).items()]
    return "\n".join(lines)

