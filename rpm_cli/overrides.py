"""Check a command line's overrides against the config before Hydra starts.

Hydra reports an unknown key or group option with a multi-line message and exit code 1, after creating
directories; rpm's rule is one line, exit code 2, before anything happens. `+key=value` (add) and
`++key=value` (add or change) still add keys a user means to add; `~key` (delete) is refused, since every
command reads every key of its config (a group's default, `~group`, may still be dropped); `hydra.*` and
`hydra/...` are Hydra's own.
"""
import difflib
import itertools
from pathlib import Path

from omegaconf import OmegaConf

from rpm_cli import CONFIG_DIR

# Hydra's flags that take a value: skipped with their value.
VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
               "--config-dir", "-cd", "--experimental-rerun", "--shell-completion", "-sc"}
INFO_FLAGS = {"--info", "-i"}  # an optional value, one of INFO_CHOICES
INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
MAX_COMBINATIONS = 64  # swept group options composed to check a multirun's keys against each
_MISSING = object()


def extra_config_dirs(args: list[str]) -> list[Path]:
    """Config dirs added with --config-dir/-cd (a user's own priors, say), searched besides rpm's."""
    dirs = [Path(args[i + 1]) for i, a in enumerate(args[:-1]) if a in ("--config-dir", "-cd")]
    return dirs + [Path(a.split("=", 1)[1]) for a in args if a.startswith(("--config-dir=", "-cd="))]


def override_args(args: list[str]) -> list[str]:
    """The `key=value` overrides among argv, without Hydra's flags and their values."""
    out, skip = [], False
    for i, arg in enumerate(args):
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in VALUE_FLAGS or (arg in INFO_FLAGS and i + 1 < len(args) and args[i + 1] in INFO_CHOICES)
        else:
            out.append(arg)
    return out


def groups(extra=()) -> set[str]:
    return {p.name for d in (Path(CONFIG_DIR), *extra) if d.is_dir() for p in d.iterdir()
            if p.is_dir() and p.name != "hydra" and not p.name.startswith("_")}


def options(group: str, extra=()) -> list[str]:
    return sorted({p.stem for d in (Path(CONFIG_DIR), *extra) for p in (d / group).glob("*.yaml")})


def leaf_keys(cfg, prefix="") -> list[str]:
    keys = []
    for key, value in cfg.items_ex(resolve=False):
        path = f"{prefix}{key}"
        keys.append(path)
        if OmegaConf.is_dict(value):
            keys += leaf_keys(value, path + ".")
    return keys


def _value_above(cfg, key: str) -> str | None:
    """The nearest enclosing key of `key` that exists and holds a value (not a dict of keys), if any."""
    parts = key.split(".")
    for end in range(len(parts) - 1, 0, -1):
        above = ".".join(parts[:end])
        node = OmegaConf.select(cfg, above, default=_MISSING, throw_on_missing=False)
        if node is not _MISSING:
            return None if OmegaConf.is_dict(node) else above
    return None


def check(config_name: str, args: list[str]) -> str | None:
    """None when every override names a known group option or key; else the one-line error."""
    from hydra.errors import HydraException

    try:
        return _check(config_name, args)
    except HydraException as exc:
        return f"cannot read the overrides: {str(exc).strip().splitlines()[0]}"


def _check(config_name: str, args: list[str]) -> str | None:
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType

    parsed = OverridesParser.create().parse_overrides(override_args(args))
    multirun = any(a in ("-m", "--multirun") for a in args)
    extra = extra_config_dirs(args)
    known_groups = groups(extra)
    choices, keys, added, forced = [], [], [], []
    for override in parsed:
        name = override.key_or_group
        if name == "hydra" or name.startswith(("hydra.", "hydra/")):
            continue
        if override.is_sweep_override() and not multirun:
            return f"{name}={override.input_line.split('=', 1)[1]} is a sweep: add -m (--multirun) to run one job per value"
        if name in known_groups:
            if override.is_delete():
                continue  # dropping a group's default is Hydra's to do
            if override.is_add():
                return f"{name} already has a default: set it with {name}=<option>, not +{name}="
            if override.value_type == ValueType.GLOB_CHOICE_SWEEP or override.is_interval_sweep():
                continue  # glob(...), interval(...): Hydra expands them against the options that exist
            if override.is_discrete_sweep():
                values = list(override.sweep_string_iterator())
            else:
                values = [override.get_value_element_as_str()]
            allowed = options(name, extra)
            for value in values:
                if value not in allowed and value != "null":
                    return f"{name} must be one of: {', '.join(allowed)} (got '{value}')"
            choices.append([f"{name}={value}" for value in values])
        elif override.is_delete():
            return f"{name} cannot be deleted: rpm reads every key of its config; set {name}=<value> instead"
        elif override.is_add():
            added.append(name)  # +key=value: the key must not exist yet
        elif override.is_force_add():
            forced.append(name)  # ++key=value: set or add
        else:
            keys.append(name)  # set: the key must exist
    if not keys and not added and not forced:
        return None
    searchpath = [f"hydra.searchpath=[{','.join('file://' + str(d.resolve()) for d in extra)}]"] if extra else []
    # Every combination of the swept group options, so each job of a multirun is checked, not only the first.
    for chosen in itertools.islice(itertools.product(*choices), MAX_COMBINATIONS):
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=[*searchpath, *chosen])
        for key in keys:
            if OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=False) is _MISSING:
                close = difflib.get_close_matches(key, leaf_keys(cfg), n=1)
                plugin = key.startswith("prior.")  # only a prior reads keys its config does not list
                hint = (f" (did you mean {close[0]}?)" if close
                        else " (add a prior's own hyper-parameter with +key=value)" if plugin else "")
                where = f" with {' '.join(chosen)}" if any(len(c) > 1 for c in choices) else ""
                return f"unknown key {key}{where}{hint}"
        for key in added:
            if OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=False) is not _MISSING:
                return f"+{key} adds a key, but {key} exists: set it with {key}=<value> (or ++{key}=<value>)"
        for key in added + forced:
            parent = _value_above(cfg, key)
            if parent is not None:
                return f"{key} cannot be added: {parent} holds a value, not keys"
    return None
