"""Config -> Prior: Hydra `_target_` for new configs, `name` for configs written before priors had one."""
import importlib
import inspect
from collections.abc import Mapping

import hydra.utils
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rpm_cli.errors import UserError
from rpm_cli.models.priors.base import Prior

# Filled by the package __init__ with every Prior class, keyed by its `name`.
REGISTRY: dict[str, type[Prior]] = {}

# Supplied by the model, never by the config.
_FROM_MODEL = ("dim", "scale")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _plain(prior_cfg) -> dict:
    """A resolved plain dict (so `${data.ball_diameter}` is looked up against the full config)."""
    if isinstance(prior_cfg, DictConfig):
        try:
            return OmegaConf.to_container(prior_cfg, resolve=True)
        except OmegaConfBaseException as exc:
            key = str(getattr(exc, "full_key", "") or "")
            key = key if key.startswith("prior") else f"prior.{key}".rstrip(".")
            raise UserError(f"{key} could not be resolved: {_first_line(exc)}") from None
    if not isinstance(prior_cfg, Mapping):
        raise UserError(f"prior must be a mapping of hyper-parameters (got {prior_cfg!r})")
    return dict(prior_cfg)


def _locate(target) -> type:
    """Import `pkg.module.Class`. Only looks the class up; calling it is left to hydra.utils.instantiate."""
    if not isinstance(target, str) or "." not in target:
        raise UserError(f"prior._target_ must be a dotted path such as rpm_cli.models.priors.GaussianPrior "
                        f"(got {target!r})")
    module_name, _, attr = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"prior._target_ {target} could not be imported ({_first_line(exc)})") from None
    if not (isinstance(obj, type) and issubclass(obj, Prior)):
        raise UserError(f"prior._target_ {target} is not a Prior subclass (see rpm_cli.models.priors)")
    if inspect.isabstract(obj):
        raise UserError(f"prior._target_ {target} is abstract; name a concrete prior such as "
                        f"rpm_cli.models.priors.GaussianPrior")
    return obj


def _check_keys(cls: type, params: dict) -> None:
    """Unknown or missing keyword arguments as one line naming the key (instead of Hydra's TypeError)."""
    signature = inspect.signature(cls.__init__)
    accepted = {n: p for n, p in list(signature.parameters.items())[1:]
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in _FROM_MODEL}
    allowed = ", ".join(accepted) or "none"
    for key in sorted(params):
        if key in _FROM_MODEL:
            raise UserError(f"prior.{key} is set by the model, not the config (allowed: {allowed})")
        if key not in accepted:
            raise UserError(f"prior.{key} is not a parameter of {cls.__name__} (allowed: {allowed})")
    for name, p in accepted.items():
        if p.default is p.empty and name not in params:
            raise UserError(f"prior.{name} is required by {cls.__name__} (allowed: {allowed})")


def build_prior(prior_cfg, dim: int, scale: float) -> Prior:
    """The Prior a `prior:` config group names, for latents of `dim` dimensions in units of `scale` pixels.

    `{_target_: rpm_cli.models.priors.GaussianPrior, name: gaussian, lengthscale: 32, ...}` instantiates the
    target with the remaining keys plus dim and scale. A config without `_target_` (checkpoints written
    before it existed) is mapped through its `name`. Any bad key or value raises a one-line UserError.
    """
    params = _plain(prior_cfg)
    name = params.pop("name", None)
    target = params.pop("_target_", None)
    if target is None:
        if name not in REGISTRY:
            raise UserError(f"prior.name must be one of {', '.join(REGISTRY)} when prior._target_ is not set "
                            f"(got {name!r})")
        cls = REGISTRY[name]
        target = f"{cls.__module__}.{cls.__qualname__}"
    cls = _locate(target)
    _check_keys(cls, params)
    try:
        # Not recursive: a nested `_target_` in a hyper-parameter is a mistake for the type checks to report,
        # not something to instantiate.
        return hydra.utils.instantiate({"_target_": target, "_recursive_": False, **params}, dim=dim, scale=scale)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, UserError):
            raise cause from None  # the constructor's own one-line message, without Hydra's wrapper
        if cause is None:  # refused by Hydra itself (e.g. its target blocklist)
            raise UserError(f"prior._target_ {target} could not be instantiated ({_first_line(exc)})") from None
        raise cause  # a bug in the prior, not a config mistake: keep the traceback
