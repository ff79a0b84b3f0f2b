"""Closed forms for the limits of the appendices: deterministic encoders ε → 0 (App. B) and the empirical-marginal
RPM on M data pairs (App. A.1, C). ε is the encoder noise standard deviation (the paper's Eq. 46 variance is ε²)."""
import math

import numpy as np

from rpm_cli.theory.critics import GaussianCritic
from rpm_cli.theory.gaussian import LinearGaussianRPM, i_infinity, mutual_information_eps0
from rpm_cli.theory.linalg import inv_spd, logsumexp, range_eigenvalues


# ------------------------------------------------------------------------------- App. B: ε → 0 asymptotics
def noiseless_rank(model: LinearGaussianRPM) -> int:
    """rank of Σ at ε = 0: the dimension of the subspace R(z, z') concentrates on."""
    return int(range_eigenvalues(model.with_eps(0.0).cov_joint).size)


def fixed_prior_kl_slope(model: LinearGaussianRPM) -> int:
    """d KL(R ‖ N(0, Σ_f)) / d log(1/ε) → 2 dz - rank as ε → 0 (the -½ log det Σ term; Σ = Σ₀ + ε² I)."""
    return 2 * model.dz - noiseless_rank(model)


def fixed_prior_slope_bound(model: LinearGaussianRPM, prior_cov: np.ndarray, eps: float) -> float:
    """|d KL/du - (2dz - rank)| at any ε' ≤ eps, u = log(1/ε'). Exactly
    d KL/du = (2dz - rank) + Σ_{λ>0} ε²/(λ + ε²) - ε² tr Σ_f⁻¹ (λ: non-zero eigenvalues of Σ₀),
    the two corrections have opposite signs and grow with ε, so the bound is ε² max(Σ 1/λ, tr Σ_f⁻¹)."""
    lam = range_eigenvalues(model.with_eps(0.0).cov_joint)
    return eps ** 2 * max(float(np.sum(1.0 / lam)), float(np.trace(inv_spd(prior_cov))))


def infonce_kl_eps0(model: LinearGaussianRPM, critic: GaussianCritic) -> float:
    """lim_{ε→0} KL(R ‖ P^InfoNCE) = MI₀ - I_∞(ε = 0): finite (Eq. 24 needs no inverse of the singular Σ_z)."""
    return mutual_information_eps0(model) - i_infinity(model.with_eps(0.0), critic)


def infonce_kl_eps_bound(model: LinearGaussianRPM, critic: GaussianCritic, eps: float) -> float:
    """A bound on |KL_InfoNCE(ε) - KL_InfoNCE(0)| ≤ ε² sup_{s ≤ ε²} |dK/ds| (mean value theorem, s = ε²).

    K(s) = MI(s) - I_∞(s). dMI/ds = ½[Σ_z 1/(λ+s) + Σ_z' 1/(λ+s) - Σ_joint 1/(λ+s)] over the non-zero
    eigenvalues of the ε = 0 covariances (the 1/s terms cancel), so |dMI/ds| ≤ ½ Σ over all three of 1/λ.
    dI_∞/ds = -dz/θ² + tr M - ½ tr(M² Σ_z) with 0 ≼ M ≼ θ⁻² I, so |dI_∞/ds| ≤ dz/θ² + ½ θ⁻⁴ tr Σ_z(s).
    """
    m0 = model.with_eps(0.0)
    inv_sum = sum(float(np.sum(1.0 / range_eigenvalues(S))) for S in (m0.cov_z, m0.cov_zp, m0.cov_joint))
    th2 = critic.theta ** 2
    bound = 0.5 * inv_sum + model.dz / th2 + 0.5 * (np.trace(m0.cov_z) + model.dz * eps ** 2) / th2 ** 2
    return eps ** 2 * float(bound)

# --------------------------------------------------------------------- App. A.1 / C: the empirical-marginal RPM
def empirical_log_normaliser(z: np.ndarray, centres_p: np.ndarray, eps: float, theta: float) -> np.ndarray:
    """log Z(z) of Eq. 22 for the Gaussian critic when R(z') is the mixture (1/M) Σ_j N(g'_j, ε² I) of Eq. 29b:
    Z(z) = (1/M) Σ_j (θ²/(θ²+ε²))^(dz/2) exp(-|z - g'_j|² / (2(θ²+ε²))). ε = 0 gives (1/M) Σ_j f(z, g'_j)."""
    dz = z.shape[-1]
    tau2 = theta ** 2 + eps ** 2
    log_k = GaussianCritic(math.sqrt(tau2)).log_f_matrix(z, centres_p)  # -|z - g'_j|² / (2τ²)
    return logsumexp(log_k, axis=1) - math.log(centres_p.shape[0]) + 0.5 * dz * math.log(theta ** 2 / tau2)


def deterministic_elbo(g: np.ndarray, gp: np.ndarray, theta: float) -> float:
    """Eq. 51 (without its constant): with deterministic encoders z = g_i, z' = g'_i the ELBO and log P(x_i, x'_i)
    both equal log f(g_i, g'_i) - log Z₀(g_i), Z₀(z) = (1/M) Σ_j f(z, g'_j); averaged over the M pairs."""
    critic = GaussianCritic(theta)
    return float(np.mean(critic.log_f(g, gp) - empirical_log_normaliser(g, gp, 0.0, theta)))


def deterministic_pair_probabilities(g: np.ndarray, gp: np.ndarray, theta: float) -> np.ndarray:
    """P(i, j) of Eq. 34 at ε = 0: F(x_i, x'_j) = f(g_i, g'_j)/Z₀(g_i), P_ij = F_ij / M²."""
    M = g.shape[0]
    log_f = GaussianCritic(theta).log_f_matrix(g, gp)
    log_F = log_f - empirical_log_normaliser(g, gp, 0.0, theta)[:, None]
    return np.exp(log_F - 2.0 * math.log(M))


def deterministic_jensen_gap_rate(g: np.ndarray, gp: np.ndarray, theta: float) -> float:
    """Leading term of log P - ELBO = log E[e^h] - E[h] ≈ ½ ε² |∇h|² as ε → 0 (h = log f - log Z, encoder noise
    ε² I on both z and z'), i.e. returns mean_i ½ |∇h(g_i, g'_i)|² at ε = 0 (so gap ≈ ε² × this)."""
    th2 = theta ** 2
    diff = g - gp
    log_w = GaussianCritic(theta).log_f_matrix(g, gp)          # (M, M), weights of Z₀'s components
    w = np.exp(log_w - logsumexp(log_w, axis=1)[:, None])
    grad_log_z = -(g - w @ gp) / th2                            # ∇ log Z₀(z) at z = g_i
    grad_z = -diff / th2 - grad_log_z
    grad_zp = diff / th2
    return float(np.mean(0.5 * (np.sum(grad_z ** 2, 1) + np.sum(grad_zp ** 2, 1))))


def empirical_smoothing_bound(gp: np.ndarray, theta: float, eps: float, dz: int) -> float:
    """Bound on |E_q[h] - h(g, g')| for q = N(g, ε²I) N(g', ε²I): by the heat equation dE[h]/d(ε²) = ½ E[Δh], so
    the difference is ≤ ½ ε² sup|Δh|. Δ log f = -2dz/θ², Δ log Z_ε = -dz/τ² + tr Cov_w(g')/τ⁴ (τ² = θ² + ε²,
    Cov_w a weighted covariance of the centres g'_j, trace ≤ diameter²/2), so
    sup|Δh| ≤ 2dz/θ² + dz/τ² + diam²/(2τ⁴)."""
    tau2 = theta ** 2 + eps ** 2
    d2 = np.sum((gp[:, None, :] - gp[None, :, :]) ** 2, -1)
    diam2 = float(d2.max())
    return 0.5 * eps ** 2 * (2 * dz / theta ** 2 + dz / tau2 + diam2 / (2 * tau2 ** 2))
