"""A heavy-tailed prior: a multivariate Student-t in latent distance."""
import math

import torch

from rpm_cli.models.priors.base import Prior, flag, log_length, log_parameter, pairwise_diff, positive


class StudentTPrior(Prior):
    """log f_θ(z, z') = -((ν + dim)/2)·log(1 + ‖z - z'‖² / (νθ²)): the multivariate Student-t density with
    ν degrees of freedom and scale θ, up to a constant. Tends to Eq. 27 as ν → ∞; small ν tolerates the
    occasional large jump (a bounce, a swapped slot) far more than the Gaussian. θ and ν learned in log space.
    """

    name = "student_t"

    def __init__(self, dim: int, scale: float, lengthscale: float, dof: float = 3.0,
                 learn_lengthscale: bool = True, learn_dof: bool = True):
        super().__init__(dim, scale)
        log_theta = log_length("lengthscale", lengthscale, self.scale)
        self.log_lengthscale = log_parameter(log_theta, flag("learn_lengthscale", learn_lengthscale))
        self.log_dof = log_parameter(math.log(positive("dof", dof)), flag("learn_dof", learn_dof))

    def log_f(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        sq_dist = pairwise_diff(z, z_next).pow(2).sum(-1)
        # ‖d‖² / (νθ²) with the division done on the logs.
        ratio = sq_dist * torch.exp(-self.log_dof - 2 * self.log_lengthscale)
        return -0.5 * (self.log_dof.exp() + self.dim) * torch.log1p(ratio)

    def summary(self) -> dict[str, float]:
        return {"lengthscale_px": float(self.log_lengthscale.detach().exp()) * self.scale,
                "dof": float(self.log_dof.detach().exp())}
