"""Closed forms beyond Eq. 16-25, as the module's name says: the ELBO under a general approximate posterior
(Eq. 12) and under priors perturbed away from P* (Eq. 19-20), the per-pair likelihood F(x, x') of the
true-marginal RPM (Eq. 31-32, App. A.2, C) and the first-order finite-N slope b of I_N (Eq. 6-7). The data
constant log R_base(x) R_base(x') is dropped throughout."""
import math

import numpy as np

from rpm_cli.theory import critics as CR
from rpm_cli.theory.critics import critic_log_normaliser, squared_critic
from rpm_cli.theory.gaussian import LogQuadratic, expected_log_density
from rpm_cli.theory.linalg import gaussian_log_const, inv_spd, log_gaussian_mgf_quadratic, logdet_spd


def kl_to_gaussian(model, mean: np.ndarray, cov: np.ndarray) -> float:
    """KL(R(z, z') ‖ N(mean, cov)) (Eq. 18 for a Gaussian prior with a mean)."""
    P = inv_spd(cov)
    d = cov.shape[0]
    return 0.5 * (float(np.sum(P * model.cov_joint)) + float(mean @ P @ mean) - d + logdet_spd(cov)
                  - logdet_spd(model.cov_joint))


def general_q_elbo(model, prior: LogQuadratic, shift: np.ndarray, scale: float) -> float:
    """Eq. 12 averaged over the data, for Q(z, z'|x, x') = N((Ax, A'x') + shift, (scale·ε)² I):
    E_Q[log P(w) - log R(z) - log R(z')] - KL(Q ‖ R_φ(z|x) R_φ(z'|x')). With shift = 0, scale = 1 this is Q of
    Eq. 14 and the value is Eq. 16."""
    d, eps2 = model.dz, model.eps ** 2
    second = model.cov_joint - eps2 * np.eye(2 * d) + np.outer(shift, shift) + scale ** 2 * eps2 * np.eye(2 * d)
    e_log_rz = gaussian_log_const(model.cov_z) - 0.5 * float(np.sum(inv_spd(model.cov_z) * second[:d, :d]))
    e_log_rzp = gaussian_log_const(model.cov_zp) - 0.5 * float(np.sum(inv_spd(model.cov_zp) * second[d:, d:]))
    kl_q = 0.5 * (2 * d * scale ** 2 + float(shift @ shift) / eps2 - 2 * d - 2 * d * math.log(scale ** 2))
    return expected_log_density(prior, second) - e_log_rz - e_log_rzp - kl_q


def _log_ratio_form(model, critic):
    """log f - log Z(z) = -c - ½ wᵀ K w with K = Q - diag(M, 0): the density ratio P^InfoNCE / (R(z) R(z'))."""
    d = model.dz
    c, M = critic_log_normaliser(critic, CR.partner_covariance(model))
    K = critic.Q(d).copy()
    K[:d, :d] -= M
    return c, K


def pair_log_likelihood(model, critic, x: np.ndarray, xp: np.ndarray) -> np.ndarray:
    """log F(x, x') of Eq. 32 for the true-marginal RPM with P^InfoNCE (so log P(x, x') = log R_base(x)
    R_base(x') + log F, Eq. 31): F = E_{R(z|x) R(z'|x')}[f/Z], a Gaussian integral of exp(-c - ½ wᵀKw)."""
    c, K = _log_ratio_form(model, critic)
    mean = np.concatenate([x @ model.A.T, xp @ model.Ap.T], -1)
    return -c + log_gaussian_mgf_quadratic(mean, model.eps ** 2 * np.eye(2 * model.dz), K)


def pair_elbo(model, critic, x: np.ndarray, xp: np.ndarray) -> np.ndarray:
    """Eq. 15 per data pair: E_{R(z|x) R(z'|x')}[log f - log Z] = -c - ½ (mᵀKm + ε² tr K)."""
    c, K = _log_ratio_form(model, critic)
    mean = np.concatenate([x @ model.A.T, xp @ model.Ap.T], -1)
    return -c - 0.5 * (np.einsum("ni,ij,nj->n", mean, K, mean) + model.eps ** 2 * float(np.trace(K)))


def pair_gap_rate(model, critic, x: np.ndarray, xp: np.ndarray) -> np.ndarray:
    """The ε → 0 rate of log F - ELBO per pair (App. C): ½ ε² |∇h|² with ∇h = -K m at the noiseless codes."""
    _, K = _log_ratio_form(model, critic)
    mean = np.concatenate([x @ model.A.T, xp @ model.Ap.T], -1)
    return 0.5 * np.sum((mean @ K) ** 2, -1)


def positive_ratio_second_moment_min_eig(model, critic) -> float:
    """E_R(z,z')[(f/Z)²] = e^(-2c) E exp(-wᵀKw) is finite iff Σ⁻¹ + 2K ≻ 0: its smallest eigenvalue."""
    _, K = _log_ratio_form(model, critic)
    S = inv_spd(model.cov_joint) + 2 * K
    return float(np.linalg.eigvalsh(0.5 * (S + S.T)).min())


def positive_ratio_mean(model, critic) -> float:
    """E_R(z,z')[f/Z] = e^(-c) E exp(-½ wᵀKw), w ~ N(0, Σ)."""
    c, K = _log_ratio_form(model, critic)
    return math.exp(-c + float(log_gaussian_mgf_quadratic(np.zeros(2 * model.dz), model.cov_joint, K)))


def negative_ratio_second_moment(model, critic) -> float:
    """E_{R(z) R(z')}[(f/Z)²] = E_R(z)[Z₂(z)/Z(z)²] (Z₂ the normaliser of f²); inf where it diverges."""
    c, M = critic_log_normaliser(critic, CR.partner_covariance(model))
    c2, M2 = critic_log_normaliser(squared_critic(critic), CR.partner_covariance(model))
    lg = log_gaussian_mgf_quadratic(np.zeros(model.dz), model.cov_z, M2 - 2 * M)
    return math.exp(c2 - 2 * c + float(lg))


def finite_n_slope(model, critic) -> float:
    """b in I_N - I_∞ = b/N + o(1/N) (Eq. 6 expanded around Ẑ = Z): writing Σ_j f_j = N Ẑ,
    log(f₊ + N Ẑ) - log N = log Ẑ + f₊/(N Ẑ) + ..., and E log Ẑ = log Z - Var(f|z)/(2N Z²) + ..., so
    b = ½ E_z Var_z'(f/Z) - E_pos[f/Z]. The remainder is O(1/N²) only where E[(f/Z)³] is finite (true at θ* of
    the default model, not at 0.5·θ*, where it is just o(1/N)). b < 0 means I_N < I_∞ for large N (Eq. 7);
    b > 0 refutes Eq. 7."""
    return 0.5 * (negative_ratio_second_moment(model, critic) - 1.0) - positive_ratio_mean(model, critic)
