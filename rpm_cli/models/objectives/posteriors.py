"""Gaussian posteriors Q(z, z' | x, x') over a pair's joint latent w = (z, z') (2·dim numbers), for
objective=rpm. Each is a mean (B, 2d) and a lower-triangular scale (B or 1, 2d, 2d) with Σ = L Lᵀ.

    recognition   Eq. 14, InfoNCE's choice: R_φ(z|x) R_φ(z'|x') = N((g, g'), diag(σ², σ²))
    amortized     a full-covariance Gaussian from a small network on (g, g'); its last layer starts at zero,
                  so it starts as Eq. 14
    analytic      Q ∝ R_φ(z|x) R_φ(z'|x') f_θ(z, z'), Gaussian when f_θ is a Gaussian transition
                  (log f = -½ (z' - Mz - c)ᵀ P (z' - Mz - c)): precision diag(1/σ²) + Jᵀ P J with J = [-M, I],
                  mean Σ (diag(1/σ²) m_R + Jᵀ P c)

All work in the units f_θ sees; the recognition variance `var` is one number per latent dimension.
"""
from typing import NamedTuple

import torch
from torch import nn

POSTERIORS = ("recognition", "amortized", "analytic")


class GaussianQ(NamedTuple):
    mean: torch.Tensor        # (B, 2d)
    scale_tril: torch.Tensor  # (B or 1, 2d, 2d), lower-triangular, positive diagonal

    def sample(self, samples: int) -> torch.Tensor:
        """(samples, B, 2d) reparameterised draws."""
        eps = torch.randn(samples, *self.mean.shape, dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + (self.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)


def recognition_q(mean_r: torch.Tensor, var: torch.Tensor) -> GaussianQ:
    """Eq. 14: mean_r (B, 2d) = (g_i, g'_i), var (d,) the encoder's variance per dimension."""
    return GaussianQ(mean_r, torch.diag_embed(var.repeat(2).sqrt())[None])


def analytic_q(prior, mean_r: torch.Tensor, var: torch.Tensor) -> GaussianQ:
    """Q ∝ R_φ R_φ f_θ for a prior with a Gaussian form (the module docstring has the algebra)."""
    m, c, p = prior.gaussian_form()
    d = mean_r.shape[1] // 2
    eye = torch.eye(d, dtype=mean_r.dtype, device=mean_r.device)
    jac = torch.cat([-(eye if m is None else m), eye], dim=1)                  # (d, 2d): z' - Mz
    var_r = var.repeat(2)
    precision = torch.diag(1 / var_r) + jac.T @ (p[:, None] * jac)
    covariance = torch.linalg.inv(precision)
    rhs = mean_r / var_r + (0 if c is None else jac.T @ (p * c))
    return GaussianQ(rhs @ covariance.T, torch.linalg.cholesky(covariance)[None])


class AmortizedPosterior(nn.Module):
    """A full-covariance Gaussian over (z, z') from a one-hidden-layer network on (g, g'): mean
    (g, g') + σ ⊙ Δ, scale diag(σ) (diag(exp δ) + strictly-lower T). Zero last layer: Δ = δ = T = 0, Eq. 14."""

    def __init__(self, dim: int, units: int):
        super().__init__()
        n = 2 * dim
        self.n = n
        self.hidden = nn.Linear(n, units)
        self.out = nn.Linear(units, n + n + n * (n - 1) // 2)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.register_buffer("lower", torch.tril_indices(n, n, offset=-1), persistent=False)

    def forward(self, mean_r: torch.Tensor, var: torch.Tensor) -> GaussianQ:
        n = self.n
        out = self.out(torch.tanh(self.hidden(mean_r)))
        shift, log_diag, off = out[:, :n], out[:, n:2 * n], out[:, 2 * n:]
        sd = var.repeat(2).sqrt()
        below = torch.zeros(len(out), n, n, dtype=out.dtype, device=out.device)
        below[:, self.lower[0], self.lower[1]] = off
        return GaussianQ(mean_r + sd * shift, sd[:, None] * (torch.diag_embed(log_diag.exp()) + below))


def kl_to_recognition(q: GaussianQ, mean_r: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """(B,) KL(Q ‖ N(mean_r, diag var_r)) = ½[tr(V⁻¹Σ) + (m - m_R)ᵀV⁻¹(m - m_R) - n + log|V| - log|Σ|]."""
    var_r = var.repeat(2)
    trace = (q.scale_tril.pow(2).sum(-1) / var_r).sum(-1)
    mahalanobis = ((q.mean - mean_r).pow(2) / var_r).sum(-1)
    log_det_q = 2 * torch.log(torch.diagonal(q.scale_tril, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (trace + mahalanobis - len(var_r) + torch.log(var_r).sum() - log_det_q)
