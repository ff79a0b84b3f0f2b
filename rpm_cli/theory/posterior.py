"""The ELBO of Eq. 12 with a free Gaussian approximate posterior Q(z, z' | x, x') = N(μ, S) over w = (z, z')
(full covariance), the exact posterior P(w | x, x') and log P(x, x'), per data pair, in closed form. The data
constant log R_base(x) R_base(x') of Eq. 13 is dropped throughout.

Per pair the encoders give E(w) = R(z|x) R(z'|x') = N(m, ε²I), m = (Ax, A'x'), and every prior of the lab is
log-quadratic, log P(w) = c_P − ½ wᵀΛ_P w, so the log ratio in Eq. 12 is
    h(w) = log P(w) − log R(z) − log R(z') = c_h − ½ wᵀKw,   K = Λ_P − diag(Σ_z⁻¹, Σ_z'⁻¹),
    c_h = c_P − c(Σ_z) − c(Σ_z'),   c(Σ) = −½ log det(2πΣ).
Eq. 12 is then L(Q) = E_Q[h] − KL(Q ‖ E), with
    E_Q[h] = c_h − ½ (μᵀKμ + tr KS)                            (E_Q[wwᵀ] = S + μμᵀ)
    KL(N(μ₁, S₁) ‖ N(μ₂, S₂)) = ½ [tr S₂⁻¹S₁ + δᵀS₂⁻¹δ − D + log det S₂ − log det S₁],   δ = μ₁ − μ₂.
log P(x, x') − const = log F = log E_E[e^h] (Eq. 49-50) = c_h − ½ log det(I + ε²K) − ½ mᵀ(I + ε²K)⁻¹K m,
by completing the square. The exact posterior P(w | x, x') ∝ E(w) e^{h(w)} has precision Λ* = I/ε² + K and mean
μ* with Λ*μ* = m/ε², i.e. μ* = m − Λ*⁻¹K m. It is Gaussian whenever Λ* ≻ 0, and here it always is:
Λ* = Λ_P + diag(I/ε² − Σ_z⁻¹, I/ε² − Σ_z'⁻¹), where Λ_P ≻ 0 for both priors (P^InfoNCE is z ~ R(z) and z' | z
Gaussian) and Σ_z = AAᵀ + ε²I ⪰ ε²I makes the second term positive semi-definite. So L(Q*) = log F, and for
every Q, log F − L(Q) = KL(Q ‖ Q*) ≥ 0.
"""
import numpy as np

from rpm_cli.theory.gaussian import LogQuadratic
from rpm_cli.theory.linalg import gaussian_log_const, inv_spd, log_gaussian_mgf_quadratic, logdet_spd


def codes(model, x: np.ndarray, xp: np.ndarray) -> np.ndarray:
    """m = (Ax, A'x') per data pair: the mean of the encoder posterior E of Eq. 14."""
    return np.concatenate([x @ model.A.T, xp @ model.Ap.T], -1)


def encoder_cov(model) -> np.ndarray:
    """The covariance ε²I of E(w) = R(z|x) R(z'|x') (Eq. 14)."""
    return model.eps ** 2 * np.eye(2 * model.dz)


def log_ratio_form(model, prior: LogQuadratic):
    """(c_h, K) of h(w) = log P(w) − log R(z) − log R(z') = c_h − ½ wᵀKw."""
    d = model.dz
    K = prior.precision.copy()
    K[:d, :d] -= inv_spd(model.cov_z)
    K[d:, d:] -= inv_spd(model.cov_zp)
    c = prior.log_const - gaussian_log_const(model.cov_z) - gaussian_log_const(model.cov_zp)
    return c, 0.5 * (K + K.T)


def gaussian_kl(mean1, cov1, mean2, cov2) -> float:
    """KL(N(μ₁, S₁) ‖ N(μ₂, S₂)) = ½ [tr S₂⁻¹S₁ + δᵀS₂⁻¹δ − D + log det S₂ − log det S₁]."""
    P2, delta = inv_spd(cov2), mean1 - mean2
    return 0.5 * (float(np.sum(P2 * cov1)) + float(delta @ P2 @ delta) - delta.size
                  + logdet_spd(cov2) - logdet_spd(cov1))


def elbo(model, prior: LogQuadratic, m, mean, cov) -> float:
    """Eq. 12 for one data pair with codes m and Q = N(mean, cov): E_Q[h] − KL(Q ‖ N(m, ε²I))."""
    c, K = log_ratio_form(model, prior)
    expected_h = c - 0.5 * (float(mean @ K @ mean) + float(np.sum(K * cov)))
    return expected_h - gaussian_kl(mean, cov, m, encoder_cov(model))


def log_likelihood(model, prior: LogQuadratic, m) -> float:
    """log F(x, x') = log P(x, x') − log R_base(x) R_base(x') (Eq. 31-32, 49-50):
    c_h + log E_{N(m, ε²I)}[exp(−½ wᵀKw)] by completing the square (`linalg.log_gaussian_mgf_quadratic`), not
    through the posterior."""
    c, K = log_ratio_form(model, prior)
    return c + float(log_gaussian_mgf_quadratic(m, encoder_cov(model), K))


def exact_posterior(model, prior: LogQuadratic, m):
    """(mean, cov) of P(w | x, x') ∝ N(w; m, ε²I) e^{h(w)}: precision Λ* = I/ε² + K, mean μ* = m − Λ*⁻¹K m (the
    step from m written directly: Λ*⁻¹ m/ε² − m would cancel to a few digits at small ε)."""
    _, K = log_ratio_form(model, prior)
    cov = inv_spd(np.eye(m.size) / model.eps ** 2 + K)
    return m - cov @ (K @ m), cov


# ------------------------------------------------------------------------------------------ ε → 0 under a fixed prior
def null_basis(A: np.ndarray, rel_tol: float = 1e-9) -> np.ndarray:
    """An orthonormal basis of null(Aᵀ): the directions of z that the code Ax never reaches. Along them
    Σ_z = AAᵀ + ε²I has eigenvalue exactly ε², so R(z|x)/R(z) is flat there at every ε."""
    U, sv, _ = np.linalg.svd(A)
    rank = int(np.sum(sv > rel_tol * max(float(sv.max(initial=0.0)), 1e-300)))
    return U[:, rank:]


def fixed_prior_gap_limit(model, prior_cov: np.ndarray, m: np.ndarray):
    """(k, C₀ per pair) in KL(E ‖ P(w|x,x')) = k log(1/ε) + C₀ + O(ε²) under a fixed prior N(0, Σ_f).

    V spans the k = (dz − rank A) + (dz − rank A') directions along which the likelihood ratio is flat. Along V
    the exact posterior tends to the prior's conditional given the codes, N(μ_V, P_VV⁻¹) with P = Σ_f⁻¹ and
    μ_V = −P_VV⁻¹ b, b = VᵀPm (m lies in the range of the encoders, so the range-to-V block of P times m is VᵀPm);
    in the range both Q* and E are ε-thin around m and agree to O(ε²). E keeps N(0, ε²I_k) along V, so the gap
    tends to KL(N(0, ε²I_k) ‖ N(μ_V, P_VV⁻¹)) = k log(1/ε) + ½ [−log det P_VV − k + bᵀP_VV⁻¹b] + O(ε²)."""
    dz = model.dz
    Nz, Nzp = null_basis(model.A), null_basis(model.Ap)
    V = np.zeros((2 * dz, Nz.shape[1] + Nzp.shape[1]))
    V[:dz, :Nz.shape[1]], V[dz:, Nz.shape[1]:] = Nz, Nzp
    k = V.shape[1]
    if k == 0:
        return 0, np.zeros(m.shape[0])
    P = inv_spd(prior_cov)
    P_vv = V.T @ P @ V
    b = m @ P @ V
    quad = np.einsum("ni,ij,nj->n", b, inv_spd(P_vv), b)
    return k, 0.5 * (-logdet_spd(P_vv) - k + quad)
