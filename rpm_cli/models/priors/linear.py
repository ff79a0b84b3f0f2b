"""The usual InfoNCE critic: a bilinear form, without unit norm (Eq. 8)."""
import torch
from torch import nn

from rpm_cli.models.priors.base import ClosedFormZ, non_negative


class LinearPrior(ClosedFormZ):
    """log f_θ(z, z') = zᵀ W z' with a learned dim×dim matrix W (Eq. 8). z is used raw, in image-size units, as
    in the paper's failing baseline (Sec. 5, Eq. 26: it rewards large z'ᵀ(Wᵀz), not z' near z).

    W starts with N(0, init_std²) entries, drawn as `torch.randn(dim, dim) * init_std` like the old
    LinearCritic so seeded runs keep their initial W; stored as `weight` (old key `critic.weight`).
    init_std = 0 is allowed (older configs accepted it): W = 0 still gets the gradient z z'ᵀ.
    """

    name = "linear"

    def __init__(self, dim: int, scale: float, init_std: float = 0.1):
        super().__init__(dim, scale)
        self.weight = nn.Parameter(torch.randn(self.dim, self.dim) * non_negative("init_std", init_std))

    def log_f(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        return z @ self.weight @ z_next.T

    def log_expected_f(self, z, mean_next, var_next):
        # E exp(zᵀW z') over z' ~ N(μ, diag v) = exp(zᵀWμ + ½ Σ_d v_d (Wᵀz)_d²): the Gaussian's moment
        # generating function at Wᵀz.
        return z @ self.weight @ mean_next.T + 0.5 * ((z @ self.weight).pow(2) * var_next).sum(-1, keepdim=True)

    def summary(self) -> dict[str, float]:
        return {"weight_norm": float(self.weight.detach().norm())}
