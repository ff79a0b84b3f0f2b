"""objective=rpm: the recognition-parameterised model's ELBO (Eq. 12-13) under the InfoNCE prior (Eq. 21-23),
with the batch as the empirical base (Eq. 28-29), a stochastic encoder R_φ(z|x) = N(g_φ(x), σ²I) and a
Gaussian posterior Q(z, z' | x, x') of one's choice (posteriors.py).

For pair i of a batch of B, in the units f_θ sees,
    L_i = -2 log B + E_Q[log f_θ(z, z') - log Z(z)] - KL(Q ‖ R_φ(z|x_i) R_φ(z'|x'_i)),
    Z(z) = (1/B) Σ_j E_{z' ~ N(g'_j, σ²I)} f_θ(z, z')        (Eq. 22 with R(z') of Eq. 29),
where -2 log B is the constant of Eq. 13 (each empirical base puts mass 1/B on a batch's observation) and
F, F' of the prior cancel against R(z) R(z'). E_Q is an average over `samples` reparameterised draws per pair;
Z(z) is exact for each draw (the prior's `log_expected_f`), so the estimate of L_i is unbiased. The loss is
-mean_i L_i (`sum`: -Σ_i L_i). With Q of Eq. 14 and σ → 0 every draw sits at (g_i, g'_i) and
-L_i = InfoNCE's cross-entropy + log B: InfoNCE's loss plus log B.

Logged per batch and averaged per epoch: `elbo` (nats per pair), `elbo_eq14` (the same with Q of Eq. 14,
the same σ), `q_gain` (their difference: what the posterior buys) and `sigma_px`.
"""
import math

import torch
from torch import nn

from rpm_cli.domains import BOOLEAN, integer, number, one_of, require
from rpm_cli.errors import UserError
from rpm_cli.models.objectives.base import Objective
from rpm_cli.models.objectives.posteriors import (POSTERIORS, AmortizedPosterior, analytic_q, kl_to_recognition,
                                                  recognition_q)
from rpm_cli.models.priors import REGISTRY as PRIORS
from rpm_cli.models.priors import ClosedFormZ, GaussianTransition, build_prior

PRIOR_FORMS = ("infonce",)


class RecognitionNoise(nn.Module):
    """log σ of R_φ(z|x) per latent dimension, in the units f_θ sees; fixed unless learned."""

    def __init__(self, dim: int, sigma: float, learn: bool):
        super().__init__()
        self.log_sigma = nn.Parameter(torch.full((dim,), math.log(sigma)), requires_grad=learn)

    def variance(self) -> torch.Tensor:
        return torch.exp(2 * self.log_sigma)


def elbo_per_pair(prior, q, mean_r: torch.Tensor, var: torch.Tensor, samples: int) -> torch.Tensor:
    """(B,) Monte Carlo L_i (module docstring) for posterior q; mean_r (B, 2d) = (g_i, g'_i), var (d,)."""
    batch, dim = mean_r.shape[0], mean_r.shape[1] // 2
    draws = q.sample(samples)
    z, z_next = draws[..., :dim], draws[..., dim:]
    mean_next = mean_r[:, dim:]
    log_f = torch.stack([prior.log_f(z[k], z_next[k]).diagonal() for k in range(samples)])
    log_z = torch.stack([prior.log_expected_f(z[k], mean_next, var).logsumexp(1) for k in range(samples)])
    log_z = log_z - math.log(batch)
    return -2 * math.log(batch) + (log_f - log_z).mean(0) - kl_to_recognition(q, mean_r, var)


def pair_probabilities(prior, mean: torch.Tensor, mean_next: torch.Tensor, var: torch.Tensor,
                       samples: int) -> torch.Tensor:
    """(B, B) P_ij of Eq. 34 for a batch as the empirical base: P_ij = F(x_i, x'_j) / B², Eq. 32 under the
    InfoNCE prior giving F(x_i, x'_j) = E_{z ~ R(z|x_i)} E_{z' ~ R(z'|x'_j)} [f_θ(z, z') / Z(z)]. The inner
    expectation is closed-form, the outer a Monte Carlo average over `samples` draws of z per anchor."""
    batch = len(mean)
    z = mean + var.sqrt() * torch.randn(samples, *mean.shape, dtype=mean.dtype, device=mean.device)
    log_e = torch.stack([prior.log_expected_f(z[k], mean_next, var) for k in range(samples)])  # (K, B, B)
    log_z = log_e.logsumexp(-1, keepdim=True) - math.log(batch)
    return (log_e - log_z).exp().mean(0) / batch ** 2


class RPM(Objective):
    name = "rpm"
    has_prior = True
    loss_label = "RPM: −ELBO (Eq. 12-13)"
    loss_axis = "−ELBO (nats)"

    keys = {"prior_form": one_of(*PRIOR_FORMS), "posterior": one_of(*POSTERIORS),
            "sigma_px": number(0, 1e6, lo_open=True), "learn_sigma": BOOLEAN, "samples": integer(1, 1000),
            "posterior_units": integer(1, 4096)}

    def __init__(self, reduction: str = "mean", prior_form: str = "infonce", posterior: str = "recognition",
                 sigma_px: float = 1.0, learn_sigma: bool = False, samples: int = 8, posterior_units: int = 64):
        for key, value in locals().items():
            if key in self.keys:
                require(f"objective.{key}", value, self.keys[key])
        self.reduction, self.prior_form, self.posterior = reduction, prior_form, posterior
        self.sigma_px, self.learn_sigma = float(sigma_px), learn_sigma
        self.samples, self.posterior_units = int(samples), int(posterior_units)

    def parts(self, dim, dataset, prior_cfg, prior_scale):
        prior = build_prior(prior_cfg, dim=dim, scale=prior_scale)
        self.check_prior(prior)
        parts = {"prior": prior, "noise": RecognitionNoise(dim, self.sigma_px / prior_scale, self.learn_sigma)}
        if self.posterior == "amortized":
            parts["posterior"] = AmortizedPosterior(dim, self.posterior_units)
        return parts

    def check_prior(self, prior):
        if not isinstance(prior, ClosedFormZ):
            fits = sorted(name for name, cls in PRIORS.items() if issubclass(cls, ClosedFormZ))
            raise UserError(f"objective=rpm needs a prior whose Z(z) has a closed form under a Gaussian encoder "
                            f"(allowed: {', '.join(fits)}; got prior={prior.name or type(prior).__name__})")
        if self.posterior == "analytic" and not isinstance(prior, GaussianTransition):
            fits = sorted(name for name, cls in PRIORS.items() if issubclass(cls, GaussianTransition))
            raise UserError(f"objective.posterior=analytic needs a prior for which Q ∝ R R f_θ is Gaussian "
                            f"(allowed: {', '.join(fits)}; got prior={prior.name or type(prior).__name__})")

    def _posterior(self, model, mean_r, var):
        if self.posterior == "amortized":
            return model.posterior(mean_r, var)
        if self.posterior == "analytic":
            return analytic_q(model.prior, mean_r, var)
        return recognition_q(mean_r, var)

    def loss_terms(self, model, z, latents):
        mean_r = torch.cat(model.prior_units(z).chunk(2), dim=1)  # (B, 2d): (g_i, g'_i)
        var = model.noise.variance().to(mean_r.dtype)
        elbo = elbo_per_pair(model.prior, self._posterior(model, mean_r, var), mean_r, var, self.samples)
        if self.posterior == "recognition":
            elbo_eq14 = elbo.detach()
        else:
            with torch.no_grad():
                elbo_eq14 = elbo_per_pair(model.prior, recognition_q(mean_r, var), mean_r, var, self.samples)
        loss = -elbo.sum() if self.reduction == "sum" else -elbo.mean()
        mean_elbo, mean_eq14 = elbo.detach().mean(), elbo_eq14.mean()
        return loss, {"elbo": mean_elbo, "elbo_eq14": mean_eq14, "q_gain": mean_elbo - mean_eq14}

    def summary(self, model):
        sigma = model.noise.log_sigma.detach().exp() * model.prior.scale
        return {"sigma_px": float(sigma.mean())}
