"""The critics f(z, z') of InfoNCE and their normalisers Z(z) = E_R(z')[f(z, z')] (Eq. 22), in closed form.

Every critic is log-quadratic, log f(z, z') = -½ wᵀ Q w with w = (z, z'), so log Z(z) = c - ½ zᵀ M z for a
Gaussian R(z') = N(0, Σ'). Each critic's normaliser is derived on its own (a Gaussian convolution, a Gaussian
moment generating function, a general completion of the square); tests compare the three where they overlap.
"""
import math
from dataclasses import dataclass

import numpy as np

from rpm_cli.theory.linalg import inv_spd, is_spd, logdet_spd


@dataclass(frozen=True, eq=False)
class GaussianCritic:
    """log f(z, z') = -|z - z'|² / (2θ²) (Eq. 27); symmetric in z, z'."""

    theta: float
    name = "gaussian"

    def Q(self, dz: int) -> np.ndarray:
        eye = np.eye(dz)
        return np.block([[eye, -eye], [-eye, eye]]) / self.theta ** 2

    def log_f(self, z, zp):
        return -0.5 * np.sum((z - zp) ** 2, axis=-1) / self.theta ** 2

    def log_f_matrix(self, z, zp):
        """(n, m) matrix of log f(z_i, z'_j), built in place: z·z'/θ² - |z|²/(2θ²) - |z'|²/(2θ²), clipped at 0."""
        s = 1.0 / self.theta ** 2
        lf = z @ (zp.T * s)
        lf -= (0.5 * s * np.sum(z * z, -1))[:, None]
        lf -= (0.5 * s * np.sum(zp * zp, -1))[None, :]
        return np.minimum(lf, 0.0, out=lf)


@dataclass(frozen=True, eq=False)
class LinearCritic:
    """log f(z, z') = zᵀ W z' (Eq. 8; W is the paper's matrix θ). With unshared encoders W is not symmetric, so
    f(z, z') ≠ f(z', z): the asymmetric critic."""

    W: np.ndarray
    name = "linear"

    def Q(self, dz: int) -> np.ndarray:
        zero = np.zeros((dz, dz))
        return np.block([[zero, -self.W], [-self.W.T, zero]])

    def log_f(self, z, zp):
        return np.sum((z @ self.W) * zp, axis=-1)

    def log_f_matrix(self, z, zp):
        return z @ self.W @ zp.T


@dataclass(frozen=True, eq=False)
class QuadraticCritic:
    """A general log-quadratic critic log f = -½ wᵀ Q w (Q symmetric, 2dz × 2dz): flexible enough to contain
    log R(z, z') / (R(z) R(z')) itself (see `flexible_critic`)."""

    Qmat: np.ndarray
    name = "quadratic"

    def Q(self, dz: int) -> np.ndarray:
        return self.Qmat

    def log_f(self, z, zp):
        w = np.concatenate([z, zp], -1)
        return -0.5 * np.einsum("...i,ij,...j->...", w, self.Qmat, w)

    def log_f_matrix(self, z, zp):
        d = z.shape[1]
        Qzz, Qzp, Qpp = self.Qmat[:d, :d], self.Qmat[:d, d:], self.Qmat[d:, d:]
        return (-0.5 * np.einsum("ni,ij,nj->n", z, Qzz, z)[:, None] - z @ Qzp @ zp.T
                - 0.5 * np.einsum("ni,ij,nj->n", zp, Qpp, zp)[None, :])


def gaussian_critic_log_normaliser(theta: float, cov_zp: np.ndarray):
    """(c, M) of log Z(z) = c - ½ zᵀ M z for the Gaussian critic (Eq. 22, 27):
    Z(z) = ∫ N(z'; 0, Σ') exp(-|z - z'|²/(2θ²)) dz' = (2πθ²)^(dz/2) N(z; 0, Σ' + θ² I), so
    M = (Σ' + θ² I)⁻¹ and c = -½ log det(I + Σ'/θ²)."""
    dz = cov_zp.shape[0]
    M = inv_spd(cov_zp + theta ** 2 * np.eye(dz))
    c = -0.5 * logdet_spd(np.eye(dz) + cov_zp / theta ** 2)
    return c, M


def linear_critic_log_normaliser(W: np.ndarray, cov_zp: np.ndarray):
    """The Gaussian MGF E exp(zᵀ W z') = exp(½ zᵀ W Σ' Wᵀ z): c = 0, M = -W Σ' Wᵀ (finite for every z)."""
    return 0.0, -(W @ cov_zp @ W.T)


def quadratic_critic_log_normaliser(Q: np.ndarray, cov_zp: np.ndarray):
    """Completing the square in z': with blocks (Q_zz, Q_zz', Q_z'z'),
    Z(z) = exp(-½ zᵀQ_zz z) E exp(-zᵀQ_zz' z' - ½ z'ᵀQ_z'z' z')
         = det(I + Σ'Q_z'z')^(-½) exp(-½ zᵀ[Q_zz - Q_zz'(Σ'⁻¹ + Q_z'z')⁻¹Q_z'z] z)."""
    d = cov_zp.shape[0]
    Qzz, Qzp, Qpp = Q[:d, :d], Q[:d, d:], Q[d:, d:]
    inner = inv_spd(cov_zp) + Qpp
    if not is_spd(inner):
        raise ValueError("Σ'⁻¹ + Q_z'z' is not positive definite: Z(z) is infinite")
    sign, logdet = np.linalg.slogdet(np.eye(d) + cov_zp @ Qpp)
    M = Qzz - Qzp @ inv_spd(inner) @ Qzp.T
    return -0.5 * logdet, 0.5 * (M + M.T)


def critic_log_normaliser(critic, cov_zp: np.ndarray):
    """(c, M) of log Z(z) for any critic. Looks the functions up at call time, so a test can break one."""
    if isinstance(critic, GaussianCritic):
        return gaussian_critic_log_normaliser(critic.theta, cov_zp)
    if isinstance(critic, LinearCritic):
        return linear_critic_log_normaliser(critic.W, cov_zp)
    if isinstance(critic, QuadraticCritic):
        return quadratic_critic_log_normaliser(critic.Qmat, cov_zp)
    raise TypeError(f"unknown critic {critic!r}")


def partner_covariance(model) -> np.ndarray:
    """Z(z) = E_R(z')[f(z, z')] averages over the second latent (Eq. 22), so its covariance is Σ_z'. Every closed
    form calls this through the module (`critics.partner_covariance`), so one patch reaches every use."""
    return model.cov_zp


def power_critic(critic, k: float = 2.0):
    """The critic f^k (for moments of f / Z)."""
    if isinstance(critic, GaussianCritic):
        return GaussianCritic(critic.theta / math.sqrt(k))
    if isinstance(critic, LinearCritic):
        return LinearCritic(k * critic.W)
    return QuadraticCritic(k * critic.Qmat)


def squared_critic(critic):
    """The critic f² (for second moments of f / Z)."""
    return power_critic(critic, 2.0)


def ratio_moment_min_eig(model, critic, k: float, outer: float = 1.0) -> float:
    """E_z[(E_z'[f^k | z] / Z(z)^k)^outer] over R(z)R(z') is finite iff Σ_z⁻¹ + outer·(M_k - kM) ≻ 0; returns the
    smallest eigenvalue (-inf where Z_k itself diverges). k = 2: E[(f/Z)²]; k = 4: E[(f/Z)⁴]; k = 2, outer = 2:
    the variance of the Rao-Blackwellised second moment."""
    try:
        _, M = critic_log_normaliser(critic, partner_covariance(model))
        _, Mk = critic_log_normaliser(power_critic(critic, k), partner_covariance(model))
    except ValueError:
        return -math.inf
    K = inv_spd(model.cov_z) + outer * (Mk - k * M)
    return float(np.linalg.eigvalsh(0.5 * (K + K.T)).min())


def second_moment_finite(model, critic) -> tuple[bool, float]:
    """Whether E_{R(z)R(z')}[(f/Z)²] is finite (a sample mean of f/Z then has a standard error):
    log E[(f/Z)²|z] = (c₂ - 2c) - ½ zᵀ(M₂ - 2M)z is R(z)-integrable iff K = Σ_z⁻¹ + M₂ - 2M ≻ 0.
    Returns (finite, smallest eigenvalue of K)."""
    lam = ratio_moment_min_eig(model, critic, 2.0)
    return lam > 0.0, lam


def optimal_linear_W(model) -> np.ndarray:
    """The maximiser of I_∞(W) for the linear critic: I_∞ = tr(W Cᵀ) - ½ tr(W Σ' Wᵀ Σ_z) is concave with
    gradient C - Σ_z W Σ', so W* = Σ_z⁻¹ C Σ'⁻¹ (not symmetric unless Σ_z, Σ' and C line up)."""
    return inv_spd(model.cov_z) @ model.cross @ inv_spd(model.cov_zp)


def flexible_critic(model) -> QuadraticCritic:
    """f = R(z, z') / (R(z) R(z')) up to a constant: Q = Σ⁻¹ - diag(Σ_z⁻¹, Σ'⁻¹). The 'arbitrarily flexible f'
    after Eq. 7, for which I_∞ = MI."""
    d = model.dz
    Q = inv_spd(model.cov_joint)
    Q[:d, :d] -= inv_spd(model.cov_z)
    Q[d:, d:] -= inv_spd(model.cov_zp)
    return QuadraticCritic(0.5 * (Q + Q.T))
