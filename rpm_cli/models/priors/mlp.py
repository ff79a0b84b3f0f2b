"""A flexible learned critic: an MLP on the concatenated pair."""
import torch
from torch import nn

from rpm_cli.models.priors.base import Prior, count


class MLPPrior(Prior):
    """log f_θ(z, z') = g([z, z']) with g a small MLP (`layers` hidden layers of width `hidden`, SiLU):
    the flexible critic of Tschannen et al. 2019 ("On mutual information maximization for representation
    learning"), which tightens the MI bound (Sec. 3.2) without encoding any prior knowledge about z.
    SiLU rather than ReLU so log f is smooth in z. Parameters live in `net` (an nn.Sequential).
    """

    name = "mlp"

    def __init__(self, dim: int, scale: float, hidden: int = 32, layers: int = 2):
        super().__init__(dim, scale)
        # Bounded so that the (B, B', hidden) activations of every pair stay small (evaluation scores ~300² pairs).
        hidden, layers = count("hidden", hidden, high=1024), count("layers", layers, high=16)
        blocks, width = [], 2 * self.dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        self.net = nn.Sequential(*blocks, nn.Linear(width, 1))

    def log_f(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        # Every (i, j) pair by broadcasting: (B, B', 2·dim) -> (B, B').
        shape = (z.shape[0], z_next.shape[0], self.dim)
        pairs = torch.cat([z[:, None, :].expand(shape), z_next[None, :, :].expand(shape)], dim=-1)
        return self.net(pairs).squeeze(-1)

    def summary(self) -> dict[str, float]:
        sq = sum(float(p.detach().pow(2).sum()) for p in self.parameters())
        return {"param_norm": sq**0.5}
