"""Config -> object for rpm's plug-in groups: `prior:`, `data:` and `encoder:` each name a class by Hydra's
`_target_`, and its other keys are the constructor's keyword arguments.

One builder for all three, so every group refuses a bad key the same way, in one line naming `<group>.<key>`:
a target that does not import or is not the group's kind, a key the class does not take, a required key
missing, a key the caller supplies (`supplied`, e.g. a prior's `dim`) set in the config. A config written
before its group had `_target_` is mapped through its `name` by the group's registry.
"""
import importlib
import inspect
from collections.abc import Mapping

import hydra.utils
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rpm_cli.errors import UserError


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def plain(group: str, node) -> dict:
    """A resolved plain dict (so `${data.ball_diameter}` is looked up against the full config)."""
    if isinstance(node, DictConfig):
        try:
            return OmegaConf.to_container(node, resolve=True)
        except OmegaConfBaseException as exc:
            key = str(getattr(exc, "full_key", "") or "")
            key = key if key.startswith(group) else f"{group}.{key}".rstrip(".")
            raise UserError(f"{key} could not be resolved: {first_line(exc)}") from None
    if not isinstance(node, Mapping):
        raise UserError(f"{group} must be a mapping of settings (got {node!r})")
    return dict(node)


def locate(group: str, target, base: type, example: str) -> type:
    """Import `pkg.module.Class` and check it is a concrete `base`. Calling it is left to instantiate()."""
    if not isinstance(target, str) or "." not in target:
        raise UserError(f"{group}._target_ must be a dotted path such as {example} (got {target!r})")
    module_name, _, attr = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"{group}._target_ {target} could not be imported ({first_line(exc)})") from None
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise UserError(f"{group}._target_ {target} is not a {base.__name__} subclass (see {base.__module__})")
    if inspect.isabstract(obj):
        raise UserError(f"{group}._target_ {target} is abstract; name a concrete one such as {example}")
    return obj


def check_keys(group: str, cls: type, params: dict, supplied=()) -> None:
    """Unknown or missing keyword arguments as one line naming the key (instead of Hydra's TypeError)."""
    signature = inspect.signature(cls.__init__)
    accepted = {n: p for n, p in list(signature.parameters.items())[1:]
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in supplied}
    allowed = ", ".join(accepted) or "none"
    for key in sorted(params):
        if key in supplied:
            raise UserError(f"{group}.{key} is set by the model, not the config (allowed: {allowed})")
        if key not in accepted:
            raise UserError(f"{group}.{key} is not a parameter of {cls.__name__} (allowed: {allowed})")
    for name, p in accepted.items():
        if p.default is p.empty and name not in params:
            raise UserError(f"{group}.{name} is required by {cls.__name__} (allowed: {allowed})")


def plugin_class(group: str, node, base: type, registry: dict, example: str) -> tuple[type, dict]:
    """(the class a group's config names, its constructor keys): `_target_` and `name` taken out."""
    params = plain(group, node)
    name = params.pop("name", None)
    target = params.pop("_target_", None)
    if target is None:
        if name not in registry:
            raise UserError(f"{group}.name must be one of {', '.join(registry)} when {group}._target_ is not set "
                            f"(got {name!r})")
        cls = registry[name]
        target = f"{cls.__module__}.{cls.__qualname__}"
    return locate(group, target, base, example), params


def build(group: str, node, base: type, registry: dict, example: str, **supplied):
    """The object a group's config names, its keys checked, with `supplied` (what the caller knows, never the
    config) added to the constructor's arguments."""
    cls, params = plugin_class(group, node, base, registry, example)
    check_keys(group, cls, params, supplied)
    target = f"{cls.__module__}.{cls.__qualname__}"
    try:
        # Not recursive: a nested `_target_` in a setting is a mistake for the type checks to report.
        return hydra.utils.instantiate({"_target_": target, "_recursive_": False, **params}, **supplied)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, UserError):
            raise cause from None  # the constructor's own one-line message, without Hydra's wrapper
        if cause is None:  # refused by Hydra itself (e.g. its target blocklist)
            raise UserError(f"{group}._target_ {target} could not be instantiated ({first_line(exc)})") from None
        raise cause  # a bug in the plug-in, not a config mistake: keep the traceback
