"""f_θ priors (Sec. 3.2, Eq. 21): plug-in classes selected by the `_target_` of configs/prior/<name>.yaml.

Every class maps (z, z') batches to the (B, B') matrix of log f_θ(z_i, z'_j) that InfoNCE takes; see
base.Prior for the interface and the pixel/latent-unit convention.
"""
from rpm_cli.models.priors.base import ClosedFormZ, GaussianTransition, Prior
from rpm_cli.models.priors.build import REGISTRY, build_prior
from rpm_cli.models.priors.cosine import CosinePrior
from rpm_cli.models.priors.dynamics import DynamicsPrior
from rpm_cli.models.priors.gaussian import GaussianPrior
from rpm_cli.models.priors.gaussian_slots import GaussianSlotsPrior
from rpm_cli.models.priors.laplace import LaplacePrior
from rpm_cli.models.priors.linear import LinearPrior
from rpm_cli.models.priors.mlp import MLPPrior
from rpm_cli.models.priors.student_t import StudentTPrior

PRIORS = (GaussianPrior, GaussianSlotsPrior, LaplacePrior, StudentTPrior, CosinePrior, LinearPrior,
          DynamicsPrior, MLPPrior)
REGISTRY.update({cls.name: cls for cls in PRIORS})

__all__ = ["Prior", "ClosedFormZ", "GaussianTransition", "build_prior", "REGISTRY", "PRIORS", "GaussianPrior", "GaussianSlotsPrior", "LaplacePrior",
           "StudentTPrior", "CosinePrior", "LinearPrior", "DynamicsPrior", "MLPPrior"]
