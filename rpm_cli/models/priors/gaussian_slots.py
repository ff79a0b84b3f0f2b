"""A Gaussian RBF with one lengthscale per slot or per latent dimension."""
import math

import torch

from rpm_cli.errors import UserError
from rpm_cli.models.priors.base import GaussianTransition, flag, log_length, one_of, pairwise_diff

PER = ("slot", "dim")


class GaussianSlotsPrior(GaussianTransition):
    """log f_θ(z, z') = -Σ_k ‖z_k - z'_k‖² / (2θ_k²): Eq. 27 with a diagonal instead of scalar lengthscale.

    `per: slot` learns one θ per map (the encoder lays z out as x0, y0, x1, y1, ...; slot k is dims 2k, 2k+1);
    `per: dim` one per coordinate, a learned diagonal precision as in AnInfoNCE (Rusak et al. 2024). With all
    θ_k equal this is exactly GaussianPrior. `log_lengthscale` has one entry per slot or dimension.
    """

    name = "gaussian_slots"

    def __init__(self, dim: int, scale: float, lengthscale: float, per: str = "slot",
                 learn_lengthscale: bool = True):
        super().__init__(dim, scale)
        self.per = one_of("per", per, PER)
        if per == "slot" and self.dim % 2:
            raise UserError(f"prior.per must be dim when the latent has an odd number of dimensions ({self.dim}) "
                            f"(got {per!r})")
        n = self.dim // 2 if per == "slot" else self.dim
        log_theta = log_length("lengthscale", lengthscale, self.scale)
        self.log_lengthscale = torch.nn.Parameter(torch.full((n,), log_theta),
                                                  requires_grad=flag("learn_lengthscale", learn_lengthscale))

    def precision(self) -> torch.Tensor:
        """1/θ² per latent dimension."""
        inv_var = torch.exp(-2 * self.log_lengthscale)
        return inv_var.repeat_interleave(2) if self.per == "slot" else inv_var  # (x, y) of slot k share θ_k

    def log_f(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        return -0.5 * (pairwise_diff(z, z_next).pow(2) * self.precision()).sum(-1)

    def gaussian_form(self):
        return None, None, self.precision()

    def summary(self) -> dict[str, float]:
        theta_px = (self.log_lengthscale.detach().exp() * self.scale).tolist()
        out = {f"lengthscale_px_{k}": v for k, v in enumerate(theta_px)}
        out["lengthscale_px_mean"] = math.fsum(theta_px) / len(theta_px)
        return out
