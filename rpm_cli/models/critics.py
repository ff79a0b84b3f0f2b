"""f_θ critics: each returns the (B, B') matrix of log f_θ(z_i, z'_j) for a batch of latents."""
import math

import torch
from torch import nn


class LinearCritic(nn.Module):
    """log f(z, z') = zᵀ W z' with a learned square matrix W (Eq. 8, the usual InfoNCE choice)."""

    def __init__(self, dim: int, init_std: float = 0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dim, dim) * init_std)

    def forward(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        return z @ self.weight @ z_next.T

    def summary(self, scale: float) -> dict:
        return {"weight_norm": float(self.weight.detach().norm())}


class GaussianCritic(nn.Module):
    """log f(z, z') = -‖z - z'‖² / (2 θ²), a Gaussian RBF with one scalar lengthscale θ (Eq. 27).

    θ is stored as log θ so it stays positive; `learn=False` holds it at its initial value.
    """

    def __init__(self, lengthscale: float, learn: bool = True):
        super().__init__()
        self.log_lengthscale = nn.Parameter(torch.tensor(math.log(lengthscale)), requires_grad=learn)

    @property
    def lengthscale(self) -> torch.Tensor:
        return self.log_lengthscale.exp()

    def forward(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        sq_dist = (z[:, None, :] - z_next[None, :, :]).pow(2).sum(-1)
        return -sq_dist / (2 * self.lengthscale**2)

    def summary(self, scale: float) -> dict:
        """`scale` converts latent units to pixels (the image size), for reporting."""
        return {"lengthscale_px": float(self.lengthscale.detach()) * scale}
