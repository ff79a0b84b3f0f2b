"""The SimCLR critic: cosine similarity over a temperature."""
import math

import torch

from rpm_cli.models.priors.base import Prior, flag, log_parameter, positive

# Added to ‖z‖² before the square root: keeps z / ‖z‖ and its gradient finite at z = 0 (bounded by 1/EPS),
# and changes nothing measurable for the (0, 1)-valued latents the encoder produces.
EPS = 1e-6


def _unit(z: torch.Tensor) -> torch.Tensor:
    return z * torch.rsqrt(z.pow(2).sum(-1, keepdim=True) + EPS**2)


class CosinePrior(Prior):
    """log f_θ(z, z') = zᵀz' / (‖z‖‖z'‖τ): Eq. 8 with θ = I/τ on unit-norm latents, the usual InfoNCE /
    SimCLR setup (Sec. 3.2: Eq. 8 "usually needs unit norm"; Chen et al. 2020). τ learned in log space. On this
    task it discards ‖z‖, which carries part of where the balls are: Sec. 5 argues unit norm does not fit here.
    """

    name = "cosine"

    def __init__(self, dim: int, scale: float, temperature: float = 0.1, learn_temperature: bool = True):
        super().__init__(dim, scale)
        self.log_temperature = log_parameter(math.log(positive("temperature", temperature)),
                                             flag("learn_temperature", learn_temperature))

    def log_f(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        return (_unit(z) @ _unit(z_next).T) * torch.exp(-self.log_temperature)

    def summary(self) -> dict[str, float]:
        return {"temperature": float(self.log_temperature.detach().exp())}
