"""Check a command line's overrides against the config before Hydra starts.

Hydra reports an unknown key or group option with a multi-line message and exit code 1, after creating
directories; rpm's rule is one line, exit code 2, before anything happens. `+key=value` (add) and
`++key=value` (add or change) still add keys a user means to add; `hydra.*` and `hydra/...` are Hydra's own.
"""
import difflib
from pathlib import Path

from omegaconf import OmegaConf

from rpm_cli import CONFIG_DIR

# Hydra's flags that take a value: skipped with their value.
VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
               "--config-dir", "-cd", "--experimental-rerun", "--info", "-i"}
_MISSING = object()


def override_args(args: list[str]) -> list[str]:
    """The `key=value` overrides among argv, without Hydra's flags."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in VALUE_FLAGS and arg not in ("--info", "-i")
        else:
            out.append(arg)
    return out


def groups() -> set[str]:
    return {p.name for p in Path(CONFIG_DIR).iterdir() if p.is_dir() and p.name != "hydra" and not p.name.startswith("_")}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


def leaf_keys(cfg, prefix="") -> list[str]:
    keys = []
    for key, value in cfg.items_ex(resolve=False) if hasattr(cfg, "items_ex") else cfg.items():
        path = f"{prefix}{key}"
        keys.append(path)
        if OmegaConf.is_dict(value):
            keys += leaf_keys(value, path + ".")
    return keys


def check(config_name: str, args: list[str]) -> str | None:
    """None when every override names a known group option or key; else the one-line error."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    import rpm_cli.config  # noqa: F401  (registers the resolvers the configs use)

    try:
        parsed = OverridesParser.create().parse_overrides(override_args(args))
    except HydraException as exc:
        return f"cannot parse the overrides: {str(exc).splitlines()[0]}"
    known_groups = groups()
    chosen, keys = [], []
    for override in parsed:
        name = override.key_or_group
        if name == "hydra" or name.startswith(("hydra.", "hydra/")):
            continue
        if name in known_groups and not override.is_delete():
            values = list(override.sweep_string_iterator()) if override.is_discrete_sweep() else (
                [override.get_value_element_as_str()] if not override.is_sweep_override() else [])
            allowed = options(name)
            for value in values:
                if value not in allowed and value != "null":
                    return f"{name} must be one of: {', '.join(allowed)} (got '{value}')"
            if values:
                chosen.append(f"{name}={values[0]}")
        elif not (override.is_add() or override.is_force_add()):
            keys.append(name)
    if not keys:
        return None
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=chosen)
    except HydraException as exc:
        return str(exc).splitlines()[0]
    known = leaf_keys(cfg)
    for key in keys:
        if OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=False) is _MISSING:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else " (add a new key with +key=value)"
            return f"unknown key {key}{hint}"
    return None
