"""A Gaussian prior around a learned linear prediction of the next latent."""

import torch
from torch import nn

from rpm_cli.models.priors.base import GaussianTransition, flag, log_length, log_parameter, pairwise_diff


class DynamicsPrior(GaussianTransition):
    """log f_θ(z, z') = -‖z' - (Az + b)‖² / (2θ²): Eq. 27 centred on a learned affine prediction of z'
    instead of z itself, so the prior can learn how the latents drift (a linear-Gaussian transition, as in
    a Kalman filter). A starts at the identity and b at 0, where this is exactly GaussianPrior.
    Parameters: `transition` (A), `offset` (b, latent units), `log_lengthscale`.
    """

    name = "dynamics"

    def __init__(self, dim: int, scale: float, lengthscale: float, learn_lengthscale: bool = True):
        super().__init__(dim, scale)
        log_theta = log_length("lengthscale", lengthscale, self.scale)
        self.log_lengthscale = log_parameter(log_theta, flag("learn_lengthscale", learn_lengthscale))
        self.transition = nn.Parameter(torch.eye(self.dim))
        self.offset = nn.Parameter(torch.zeros(self.dim))

    def log_f(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        predicted = z @ self.transition.T + self.offset
        sq_dist = pairwise_diff(predicted, z_next).pow(2).sum(-1)
        return -0.5 * sq_dist * torch.exp(-2 * self.log_lengthscale)

    def gaussian_form(self):
        return self.transition, self.offset, torch.exp(-2 * self.log_lengthscale).expand(self.dim)

    def summary(self) -> dict[str, float]:
        eye = torch.eye(self.dim, dtype=self.transition.dtype, device=self.transition.device)
        return {"lengthscale_px": float(self.log_lengthscale.detach().exp()) * self.scale,
                "transition_dev": float((self.transition.detach() - eye).norm()),
                "offset_px": float(self.offset.detach().norm()) * self.scale}
