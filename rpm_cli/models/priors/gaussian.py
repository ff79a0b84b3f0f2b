"""The paper's prior: a Gaussian RBF in latent distance (Eq. 27)."""
import torch

from rpm_cli.models.priors.base import GaussianTransition, flag, log_length, log_parameter, pairwise_diff


class GaussianPrior(GaussianTransition):
    """log f_θ(z, z') = -‖z - z'‖² / (2θ²), one scalar lengthscale θ (Eq. 27, Sec. 5).

    With a uniform Q(z') this is a Gaussian conditional P(z' | z): next-frame latents are near this frame's.
    θ is stored as `log_lengthscale` (latent units) — the name old checkpoints use (`critic.log_lengthscale`).
    """

    name = "gaussian"

    def __init__(self, dim: int, scale: float, lengthscale: float, learn_lengthscale: bool = True):
        super().__init__(dim, scale)
        log_theta = log_length("lengthscale", lengthscale, self.scale)
        self.log_lengthscale = log_parameter(log_theta, flag("learn_lengthscale", learn_lengthscale))

    def log_f(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        sq_dist = pairwise_diff(z, z_next).pow(2).sum(-1)
        # Written as the runs before the prior family were (θ² in the denominator): the same floats, so the
        # same trajectories, to the last digit.
        return -sq_dist / (2 * self.log_lengthscale.exp() ** 2)

    def gaussian_form(self):
        return None, None, torch.exp(-2 * self.log_lengthscale).expand(self.dim)

    def summary(self) -> dict[str, float]:
        return {"lengthscale_px": float(self.log_lengthscale.detach().exp()) * self.scale}
