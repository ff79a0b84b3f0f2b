"""Monte Carlo for the appendices: the per-pair likelihood by importance sampling (Eq. 48-50), the
empirical-marginal RPM on M pairs (App. A.1, Eq. 29, 34) and the empirical mixture as an estimate of the true
marginal (App. A.2, Eq. 35-37). Mixture densities and normalisers are written here, not taken from `limits`."""
import math

import numpy as np

from rpm_cli.theory.critics import GaussianCritic
from rpm_cli.theory.linalg import LOG_2PI, logsumexp
from rpm_cli.theory.montecarlo import RecognitionDensities, infonce_log_prior, mean_se


# ----------------------------------------------------------------------------- true marginals (App. A.2, C)
def mc_pair_likelihood(model, critic, x, xp, samples: int, rng) -> dict:
    """Per data pair, with proposal q = R(z|x) R(z'|x') (Eq. 48-50, true marginals): the weight is
    P(z, z') P(x|z) P(x'|z') / q = P(z, z') / (R(z) R(z')) once R_base(x) R_base(x') is dropped (Eq. 10).
    Returns log F (log of the mean weight), the ELBO of Eq. 15 (the mean log weight) and their SEs."""
    n, d = x.shape[0], model.dz
    dens = RecognitionDensities(model)
    log_p = infonce_log_prior(model, critic, dens)
    z = (x @ model.A.T)[:, None, :] + model.eps * rng.standard_normal((n, samples, d))
    zp = (xp @ model.Ap.T)[:, None, :] + model.eps * rng.standard_normal((n, samples, d))
    z, zp = z.reshape(-1, d), zp.reshape(-1, d)
    log_w = (log_p(z, zp) - dens.log_rz(z) - dens.log_rzp(zp)).reshape(n, samples)
    log_mean = logsumexp(log_w, axis=1) - math.log(samples)
    w = np.exp(log_w - log_mean[:, None])
    return {"log_f": log_mean, "log_f_se": np.sqrt(w.var(axis=1, ddof=1) / samples),
            "log_f_bias": w.var(axis=1, ddof=1) / (2 * samples),
            "elbo": log_w.mean(1), "elbo_se": log_w.std(axis=1, ddof=1) / math.sqrt(samples),
            "gap": log_mean - log_w.mean(1),
            "gap_se": np.sqrt(np.var(w - log_w, axis=1, ddof=1) / samples)}


def mc_pair_normalisation(model, log_f_fn, n: int, rng) -> tuple[float, float]:
    """E_{x ~ R_base, x' ~ R_base independently}[F(x, x')] = ∫ P(x, x') (Eq. 31 with true marginals): 1."""
    x, xp = rng.standard_normal((n, model.dx)), rng.standard_normal((n, model.dx))
    return mean_se(np.exp(log_f_fn(x, xp)))


# ------------------------------------------------------------------------------ the empirical mixture (A.1)
def iso_logpdf(z, mean, eps):
    d = z.shape[-1]
    return -0.5 * np.sum((z - mean) ** 2, -1) / eps ** 2 - d * math.log(eps) - 0.5 * d * LOG_2PI


def mixture_logpdf(z: np.ndarray, centres: np.ndarray, eps: float) -> np.ndarray:
    """log R(z) = log (1/M) Σ_k N(z; g_k, ε² I) (Eq. 29, 37), pointwise."""
    sq = np.sum(z * z, 1)[:, None] + np.sum(centres * centres, 1)[None, :] - 2 * z @ centres.T
    log_k = -0.5 * np.maximum(sq, 0.0) / eps ** 2
    d = z.shape[-1]
    return logsumexp(log_k, axis=1) - math.log(centres.shape[0]) - d * math.log(eps) - 0.5 * d * LOG_2PI


def mixture_normaliser(z: np.ndarray, centres_p: np.ndarray, eps: float, theta: float) -> np.ndarray:
    """log Z(z) for the Gaussian critic under the mixture R(z') of Eq. 29b: each component contributes the
    Gaussian integral ∫ N(z'; g'_j, ε²I) exp(-|z - z'|²/(2θ²)) dz' = (θ²/τ²)^(dz/2) exp(-|z - g'_j|²/(2τ²)),
    τ² = θ² + ε², and the mixture averages them."""
    tau2 = theta ** 2 + eps ** 2
    sq = np.sum((z[:, None, :] - centres_p[None, :, :]) ** 2, -1)
    d = z.shape[-1]
    return logsumexp(-0.5 * sq / tau2, axis=1) - math.log(centres_p.shape[0]) + 0.5 * d * math.log(theta ** 2 / tau2)


def empirical_elbo(g, gp, eps: float, theta: float, samples: int, rng, inner: int = 4) -> dict:
    """Eq. 15 on each positive pair of the data set, averaged: E[log f(z, z') - log Z(z)] with z ~ N(g_i, ε²),
    z' ~ N(g'_i, ε²), and Z(z) = E_R(z')[f(z, z')] sampled from its definition: R(z') the mixture of Eq. 29b,
    drawn stratified and antithetic (`inner` draws g'_j ± ε η per component j, so the first-order noise in η
    cancels), Ẑ(z) the mean of f over those draws. No
    normaliser formula and no explicit 1/M: the mean over the draws is the mixture's average."""
    M, dz = g.shape
    critic = GaussianCritic(theta)
    z = (g[:, None, :] + eps * rng.standard_normal((M, samples, dz))).reshape(-1, dz)
    zp = (gp[:, None, :] + eps * rng.standard_normal((M, samples, dz))).reshape(-1, dz)
    eta = rng.standard_normal((M, max(inner // 2, 1), dz))
    draws = np.concatenate([gp[:, None, :] + eps * eta, gp[:, None, :] - eps * eta], 1).reshape(-1, dz)
    log_z = logsumexp(critic.log_f_matrix(z, draws), axis=1) - math.log(draws.shape[0])
    h = (critic.log_f(z, zp) - log_z).reshape(M, samples)
    se = math.sqrt(float(np.sum(h.var(axis=1, ddof=1) / samples))) / M
    return {"value": float(h.mean()), "se": se}


def empirical_gap(g, gp, eps: float, theta: float, samples: int, rng) -> dict:
    """log P(x_i, x'_i) - ELBO on the data set (App. C), paired on one set of importance samples: per pair
    log mean_k w - mean_k log w with log w = log f - log Z (the mixture factors R(z), R(z') of Eq. 10 and 21
    cancel). Returns the mean gap over pairs, its delta-method SE and its first-order bias Var(w)/(2K w̄²)."""
    M, dz = g.shape
    critic = GaussianCritic(theta)
    z = (g[:, None, :] + eps * rng.standard_normal((M, samples, dz))).reshape(-1, dz)
    zp = (gp[:, None, :] + eps * rng.standard_normal((M, samples, dz))).reshape(-1, dz)
    log_w = (critic.log_f(z, zp) - mixture_normaliser(z, gp, eps, theta)).reshape(M, samples)
    log_mean = logsumexp(log_w, axis=1) - math.log(samples)
    w = np.exp(log_w - log_mean[:, None])
    gap = log_mean - log_w.mean(1)
    se = math.sqrt(float(np.sum(np.var(w - log_w, axis=1, ddof=1) / samples))) / M
    return {"value": float(gap.mean()), "se": se, "bias": float(np.mean(w.var(axis=1, ddof=1) / (2 * samples)))}


def empirical_pair_probabilities(g, gp, eps: float, theta: float, samples: int, rng) -> dict:
    """P(i, j) = F(x_i, x'_j) / M² (Eq. 34) for every index pair, F by importance sampling with proposal
    R(z|x_i) R(z'|x'_j); each factor of P(z, z') P(x_i|z) P(x'_j|z') / q from its own density, R_base the
    uniform mass 1/M over the data (Eq. 10, 28). Returns the matrix, its total and the SE of the total."""
    M, dz = g.shape
    critic = GaussianCritic(theta)
    ii, jj = (a.ravel() for a in np.meshgrid(np.arange(M), np.arange(M), indexing="ij"))
    mu = np.repeat(g[ii], samples, 0)
    mup = np.repeat(gp[jj], samples, 0)
    z = mu + eps * rng.standard_normal(mu.shape)
    zp = mup + eps * rng.standard_normal(mup.shape)
    log_rz, log_rzp = mixture_logpdf(z, g, eps), mixture_logpdf(zp, gp, eps)
    log_prior = log_rz + log_rzp + critic.log_f(z, zp) - mixture_normaliser(z, gp, eps, theta)
    log_lik = iso_logpdf(z, mu, eps) - math.log(M) - log_rz + iso_logpdf(zp, mup, eps) - math.log(M) - log_rzp
    log_q = iso_logpdf(z, mu, eps) + iso_logpdf(zp, mup, eps)
    w = np.exp(log_prior + log_lik - log_q).reshape(M * M, samples)
    P = w.mean(1).reshape(M, M)
    return {"P": P, "total": float(P.sum()), "se_total": math.sqrt(float(np.sum(w.var(axis=1, ddof=1) / samples)))}


def mixture_marginal_ratio(model, components: int, points: int, groups: int, rng) -> dict:
    """Eq. 35-37: the mixture (1/M) Σ_i R(z|x_i) over M = components data points x_i ~ R_base estimates the true
    marginal R(z) = ∫ R(z|x) R_base(x) dx. Returns mean over test points z_k ~ R(z) of mixture / R(z) (should
    be 1), the SE over `groups` independent sub-mixtures, and the same for z'."""
    dens = RecognitionDensities(model)
    out = {}
    for name, enc, log_r in (("z", model.A, dens.log_rz), ("zp", model.Ap, dens.log_rzp)):
        x = rng.standard_normal((points, model.dx))
        test = x @ enc.T + model.eps * rng.standard_normal((points, model.dz))
        centres = rng.standard_normal((components, model.dx)) @ enc.T
        per = components // groups
        ratios = [np.mean(np.exp(mixture_logpdf(test, centres[k * per:(k + 1) * per], model.eps) - log_r(test)))
                  for k in range(groups)]
        out[name] = mean_se(ratios)
    return out
