"""Closed forms for the linear-Gaussian RPM (float64 numpy throughout).

Model. x ~ N(0, I_dx), x' = ρ x + sqrt(1 - ρ²) ξ, so MI(x; x') = -(dx/2) log(1 - ρ²). Encoders
R(z|x) = N(A x, ε² I_dz) and R(z'|x') = N(A' x', ε² I_dz) (Eq. 46-47 with linear g, g'; ε is a standard
deviation here, the paper's Eq. 46 writes the variance), so the recognition joint R(z, z') of Eq. 4 is a
zero-mean Gaussian with blocks Σ_z = A Aᵀ + ε² I, Σ_z' = A' A'ᵀ + ε² I and C = Cov(z, z') = ρ A A'ᵀ.

The InfoNCE prior of Eq. 21, P(z, z') = R(z) R(z') f(z, z') / Z(z), is log-quadratic for every critic here: we
keep it as a "log-quadratic density" (precision Λ, log constant). The ELBO (Eq. 16) uses the log constant, the KL
(Eq. 18) normalises Λ as a Gaussian. All ELBOs drop the data constant log R_base(x) R_base(x') of Eq. 13.
"""
import math
from dataclasses import dataclass, replace

import numpy as np

from rpm_cli.theory import critics as CR
from rpm_cli.theory.critics import (GaussianCritic, LinearCritic, QuadraticCritic,  # noqa: F401 (re-exported)
                                    critic_log_normaliser, flexible_critic, squared_critic)
from rpm_cli.theory.linalg import (golden_section_max, gaussian_log_const, inv_spd, is_spd,  # noqa: F401
                                   log_pdet, logdet_spd, range_eigenvalues)


# ----------------------------------------------------------------------------------------------------- the model
def mi_data(rho: float, dx: int) -> float:
    """MI(x; x') = -(dx/2) log(1 - ρ²)."""
    return -0.5 * dx * math.log1p(-rho * rho)


def make_encoders(dx: int, dz: int, seed: int, shared: bool = False, scale: float = 1.0, offset: float = 1.0):
    """Random A (dz × dx, i.i.d. N(0, scale²/dx) entries) and A' = A + offset · B with B an independent copy
    (shared=True gives A' = A, the siamese encoder; offset = 1 a partly related pair)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((dz, dx)) * scale / math.sqrt(dx)
    B = rng.standard_normal((dz, dx)) * scale / math.sqrt(dx)
    return A, (A.copy() if shared else A + offset * B)


@dataclass(frozen=True, eq=False)
class LinearGaussianRPM:
    rho: float
    eps: float      # encoder noise standard deviation
    A: np.ndarray   # dz × dx, encoder of x
    Ap: np.ndarray  # dz × dx, encoder of x'

    @property
    def dx(self) -> int:
        return self.A.shape[1]

    @property
    def dz(self) -> int:
        return self.A.shape[0]

    def with_eps(self, eps: float) -> "LinearGaussianRPM":
        return replace(self, eps=float(eps))

    @property
    def cov_z(self) -> np.ndarray:
        return self.A @ self.A.T + self.eps ** 2 * np.eye(self.dz)

    @property
    def cov_zp(self) -> np.ndarray:
        return self.Ap @ self.Ap.T + self.eps ** 2 * np.eye(self.dz)

    @property
    def cross(self) -> np.ndarray:
        return self.rho * self.A @ self.Ap.T

    @property
    def cov_joint(self) -> np.ndarray:
        return np.block([[self.cov_z, self.cross], [self.cross.T, self.cov_zp]])


def mutual_information(model: LinearGaussianRPM) -> float:
    """MI(z; z') under R (Eq. 5): ½ [log det Σ_z + log det Σ_z' - log det Σ]."""
    return 0.5 * (logdet_spd(model.cov_z) + logdet_spd(model.cov_zp) - logdet_spd(model.cov_joint))


def mutual_information_eps0(model: LinearGaussianRPM) -> float:
    """The ε → 0 limit of MI(z; z') (Eq. 43-44): the log ε terms of the three log-dets cancel, leaving
    pseudo-determinants. Equals MI(x; x') when A and A' are injective."""
    m0 = model.with_eps(0.0)
    return 0.5 * (log_pdet(m0.cov_z) + log_pdet(m0.cov_zp) - log_pdet(m0.cov_joint))


# -------------------------------------------------------------------------------------- priors as log-quadratics
@dataclass(frozen=True, eq=False)
class LogQuadratic:
    """log p(w) = log_const - ½ wᵀ Λ w over w = (z, z'); normalised iff log_const = -½ log det(2π Λ⁻¹)."""

    precision: np.ndarray
    log_const: float


def gaussian_prior(cov: np.ndarray) -> LogQuadratic:
    """A normalised N(0, cov) prior over (z, z')."""
    return LogQuadratic(inv_spd(cov), gaussian_log_const(cov))


def optimal_prior(model: LinearGaussianRPM) -> LogQuadratic:
    """P*(z, z') = R(z, z') (Eq. 19)."""
    return gaussian_prior(model.cov_joint)


def infonce_prior(model: LinearGaussianRPM, critic) -> LogQuadratic:
    """P^InfoNCE of Eq. 21: log P = log R(z) + log R(z') + log f(z, z') - log Z(z). Precision:
    diag(Σ_z⁻¹ - M, Σ'⁻¹) + Q; log constant: those of R(z), R(z') minus c."""
    dz = model.dz
    c, M = critic_log_normaliser(critic, CR.partner_covariance(model))
    lam = np.zeros((2 * dz, 2 * dz))
    lam[:dz, :dz] = inv_spd(model.cov_z) - M
    lam[dz:, dz:] = inv_spd(model.cov_zp)
    lam += critic.Q(dz)
    log_const = gaussian_log_const(model.cov_z) + gaussian_log_const(model.cov_zp) - c
    return LogQuadratic(lam, log_const)


# ----------------------------------------------------------------------------------------------- the quantities
def expected_log_density(prior: LogQuadratic, second_moment: np.ndarray) -> float:
    """E[log p(w)] for any w with E[wwᵀ] = second_moment."""
    return prior.log_const - 0.5 * float(np.sum(prior.precision * second_moment))


def elbo(model: LinearGaussianRPM, prior: LogQuadratic) -> float:
    """Eq. 16 without its constant: E_R[log P(z, z') - log R(z) - log R(z')], from the prior's own log density
    (its log constant included, so an unnormalised "prior" shows up here)."""
    e_log_rz = gaussian_log_const(model.cov_z) - 0.5 * model.dz
    e_log_rzp = gaussian_log_const(model.cov_zp) - 0.5 * model.dz
    return expected_log_density(prior, model.cov_joint) - e_log_rz - e_log_rzp


def kl(model: LinearGaussianRPM, prior: LogQuadratic) -> float:
    """KL(R(z, z') ‖ N(0, Λ⁻¹)) (Eq. 18), the prior normalised from its precision alone; +inf if Λ ⊁ 0."""
    if not is_spd(prior.precision):
        return math.inf
    d = 2 * model.dz
    return 0.5 * (float(np.sum(prior.precision * model.cov_joint)) - d - logdet_spd(prior.precision)
                  - logdet_spd(model.cov_joint))


def expected_log_f(model: LinearGaussianRPM, critic) -> float:
    """E_R(z,z')[log f] = -½ tr(Q Σ)."""
    return -0.5 * float(np.sum(critic.Q(model.dz) * model.cov_joint))


def expected_log_normaliser(model: LinearGaussianRPM, critic) -> float:
    """E_R(z)[log Z(z)] = c - ½ tr(M Σ_z)."""
    c, M = critic_log_normaliser(critic, CR.partner_covariance(model))
    return c - 0.5 * float(np.sum(M * model.cov_z))


def i_infinity(model: LinearGaussianRPM, critic) -> float:
    """I_∞ of Eq. 24 (without its constant): E_R[log f] - E_R(z)[log E_R(z')[f]]."""
    return expected_log_f(model, critic) - expected_log_normaliser(model, critic)


def i_infinity_gaussian_curve(model: LinearGaussianRPM, thetas) -> np.ndarray:
    return np.array([i_infinity(model, GaussianCritic(float(t))) for t in thetas])


def argmax_theta(model: LinearGaussianRPM, iters: int = 200) -> float:
    """The maximiser of the closed-form I_∞(θ) for the Gaussian critic: a log-spaced grid, then golden-section
    search on log θ around the best grid point."""
    scale = math.sqrt(float(np.trace(model.cov_joint)) / (2 * model.dz))
    grid = np.linspace(math.log(1e-3 * scale), math.log(1e3 * scale), 121)
    vals = [i_infinity(model, GaussianCritic(math.exp(g))) for g in grid]
    k = int(np.argmax(vals))
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    u = golden_section_max(lambda v: i_infinity(model, GaussianCritic(math.exp(v))), a, b, iters, tol=1e-12)
    return math.exp(u)


def theta_star_is_interior(model: LinearGaussianRPM, theta_star: float) -> bool:
    """Whether argmax_theta found an interior maximiser (not within 1% of its search range's ends)."""
    scale = math.sqrt(float(np.trace(model.cov_joint)) / (2 * model.dz))
    return 1.01e-3 * scale < theta_star < 0.99e3 * scale
