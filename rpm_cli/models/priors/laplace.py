"""L_p-distance priors: Laplace (p = 1) and the general L_p critics of Zimmermann et al. (2021)."""

import torch

from rpm_cli.models.priors.base import Prior, at_least, flag, log_length, log_parameter, pairwise_diff

# Smoothing of |d|: each coordinate contributes (d² + δ)^{p/2} instead of |d|^p, so the gradient at z = z'
# is 0 instead of undefined (|d| has a kink, ‖·‖_p a cone point). δ is in squared latent units: it shifts
# the distance by at most dim^{1/p}·√δ = a few 1e-6 image sizes (~1e-3 px), and softmax rows ignore a
# constant shift anyway.
SMOOTHING = 1e-12


class LaplacePrior(Prior):
    """log f_θ(z, z') = -‖z - z'‖_p / θ: a Laplace prior for p = 1, and for p >= 1 the L_p critic that
    Zimmermann et al. 2021 ("Contrastive learning inverts the data generating process") show identifies
    latents when the true conditional is of that form.

    The norm is computed as exp(logsumexp((p/2)·log(d² + δ)) / p) — smooth at d = 0 (see SMOOTHING) and free
    of overflow for large p or large distances.
    """

    name = "laplace"

    def __init__(self, dim: int, scale: float, lengthscale: float, p: float = 1.0, learn_lengthscale: bool = True):
        super().__init__(dim, scale)
        self.p = at_least("p", p, 1)
        log_theta = log_length("lengthscale", lengthscale, self.scale)
        self.log_lengthscale = log_parameter(log_theta, flag("learn_lengthscale", learn_lengthscale))

    def log_f(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        log_terms = 0.5 * self.p * torch.log(pairwise_diff(z, z_next).pow(2) + SMOOTHING)
        log_norm = torch.logsumexp(log_terms, dim=-1) / self.p
        return -torch.exp(log_norm - self.log_lengthscale)

    def summary(self) -> dict[str, float]:
        return {"lengthscale_px": float(self.log_lengthscale.detach().exp()) * self.scale}
