"""Config -> Prior: Hydra `_target_` for new configs, `name` for configs written before priors had one."""
from rpm_cli.models.priors.base import Prior
from rpm_cli.plugins import build

# Filled by the package __init__ with every Prior class, keyed by its `name`.
REGISTRY: dict[str, type[Prior]] = {}


def build_prior(prior_cfg, dim: int, scale: float) -> Prior:
    """The Prior a `prior:` config group names, for latents of `dim` dimensions in units of `scale` pixels.

    `{_target_: rpm_cli.models.priors.GaussianPrior, name: gaussian, lengthscale: 32, ...}` instantiates the
    target with the remaining keys plus dim and scale (rpm_cli/plugins.py). Any bad key or value raises a
    one-line UserError.
    """
    return build("prior", prior_cfg, Prior, REGISTRY, "rpm_cli.models.priors.GaussianPrior", dim=dim, scale=scale)
