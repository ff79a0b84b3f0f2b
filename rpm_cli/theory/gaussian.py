"""Closed forms for the linear-Gaussian RPM (float64 numpy throughout).

Model. x ~ N(0, I_dx), x' = ρ x + sqrt(1 - ρ²) ξ, so MI(x; x') = -(dx/2) log(1 - ρ²). Encoders
R(z|x) = N(A x, ε² I_dz) and R(z'|x') = N(A' x', ε² I_dz) (Eq. 46-47 with linear g, g'), so the recognition
joint R(z, z') of Eq. 4 is a zero-mean Gaussian with blocks Σ_z = A Aᵀ + ε² I, Σ_z' = A' A'ᵀ + ε² I and
C = Cov(z, z') = ρ A A'ᵀ.

Every critic here is quadratic, log f(z, z') = -½ wᵀ Q w with w = (z, z'), and its normaliser
Z(z) = E_R(z')[f(z, z')] (Eq. 22) is log-quadratic, log Z(z) = c - ½ zᵀ M z. So the InfoNCE prior of Eq. 21,
P(z, z') = R(z) R(z') f(z, z') / Z(z), is log-quadratic too: we keep it as an unnormalised "log-quadratic
density" (precision Λ, log constant) built from those pieces, and the ELBO (Eq. 16) uses the log constant
while the KL (Eq. 18) normalises Λ as a Gaussian. The two agree exactly only if Z is right, which is what the
ELBO = MI - KL check tests.

All ELBOs drop the data constant log R_base(x) R_base(x') of Eq. 13.
"""
import math
from dataclasses import dataclass, replace

import numpy as np

LOG_2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------------------------- linear algebra
def cholesky(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor; LinAlgError if S is not symmetric positive definite."""
    return np.linalg.cholesky(0.5 * (S + S.T))


def logdet_spd(S: np.ndarray) -> float:
    return float(2.0 * np.sum(np.log(np.diag(cholesky(S)))))


def inv_spd(S: np.ndarray) -> np.ndarray:
    L = cholesky(S)
    Linv = np.linalg.solve(L, np.eye(S.shape[0]))
    return Linv.T @ Linv


def is_spd(S: np.ndarray) -> bool:
    try:
        cholesky(S)
        return True
    except np.linalg.LinAlgError:
        return False


def range_eigenvalues(S: np.ndarray, rel_tol: float = 1e-9) -> np.ndarray:
    """The non-zero eigenvalues of a PSD matrix (those above rel_tol · largest)."""
    lam = np.linalg.eigvalsh(0.5 * (S + S.T))
    return lam[lam > rel_tol * max(lam.max(), 0.0) * S.shape[0]]


def log_pdet(S: np.ndarray) -> float:
    """log pseudo-determinant of a PSD matrix."""
    return float(np.sum(np.log(range_eigenvalues(S))))


def gaussian_log_const(cov: np.ndarray) -> float:
    """log of the N(0, cov) normalising factor: -½ log det(2π cov)."""
    return -0.5 * (cov.shape[0] * LOG_2PI + logdet_spd(cov))


# ----------------------------------------------------------------------------------------------------- the model
def mi_data(rho: float, dx: int) -> float:
    """MI(x; x') = -(dx/2) log(1 - ρ²)."""
    return -0.5 * dx * math.log1p(-rho * rho)


def make_encoders(dx: int, dz: int, seed: int, shared: bool = False, scale: float = 1.0):
    """Random A, A' (dz × dx) with i.i.d. N(0, scale²/dx) entries; shared=True makes A' = A (siamese)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((dz, dx)) * scale / math.sqrt(dx)
    Ap = A.copy() if shared else rng.standard_normal((dz, dx)) * scale / math.sqrt(dx)
    return A, Ap


@dataclass(frozen=True, eq=False)
class LinearGaussianRPM:
    rho: float
    eps: float
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
    """The ε → 0 limit of MI(z; z'): the log ε terms of the three log-dets cancel (rank Σ = rank Σ_z + rank Σ_z'
    for ρ < 1), leaving pseudo-determinants. Equals MI(x; x') when A and A' are injective."""
    m0 = model.with_eps(0.0)
    return 0.5 * (log_pdet(m0.cov_z) + log_pdet(m0.cov_zp) - log_pdet(m0.cov_joint))


# --------------------------------------------------------------------------------------------------- critics
@dataclass(frozen=True, eq=False)
class GaussianCritic:
    """log f(z, z') = -|z - z'|² / (2θ²) (Eq. 27)."""

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
    """log f(z, z') = zᵀ W z' (Eq. 8; W is the paper's matrix θ)."""

    W: np.ndarray
    name = "linear"

    def Q(self, dz: int) -> np.ndarray:
        zero = np.zeros((dz, dz))
        return np.block([[zero, -self.W], [-self.W.T, zero]])

    def log_f(self, z, zp):
        return np.sum((z @ self.W) * zp, axis=-1)

    def log_f_matrix(self, z, zp):
        return z @ self.W @ zp.T


def gaussian_critic_log_normaliser(theta: float, cov_zp: np.ndarray):
    """log Z(z) for the Gaussian critic (Eq. 22, 27) as (c, M) with log Z(z) = c - ½ zᵀ M z.

    Z(z) = ∫ N(z'; 0, Σ') exp(-|z - z'|²/(2θ²)) dz' = (2πθ²)^(dz/2) N(z; 0, Σ' + θ² I), so
    M = (Σ' + θ² I)⁻¹ and c = -½ log det(I + Σ'/θ²).
    """
    dz = cov_zp.shape[0]
    M = inv_spd(cov_zp + theta ** 2 * np.eye(dz))
    c = -0.5 * logdet_spd(np.eye(dz) + cov_zp / theta ** 2)
    return c, M


def linear_critic_log_normaliser(W: np.ndarray, cov_zp: np.ndarray):
    """log Z(z) for the linear critic: the Gaussian MGF E exp(zᵀ W z') = exp(½ zᵀ W Σ' Wᵀ z), finite for every z:
    c = 0, M = -W Σ' Wᵀ (negative semi-definite, so E_R(z)[Z(z)] itself is finite only while
    Σ_z⁻¹ - W Σ' Wᵀ ≻ 0; see `second_moment_finite`)."""
    return 0.0, -(W @ cov_zp @ W.T)


def critic_log_normaliser(critic, cov_zp: np.ndarray):
    """(c, M) of log Z(z) = c - ½ zᵀ M z for either critic. Looks the critic's function up at call time (tests
    replace `gaussian_critic_log_normaliser` with a broken one and expect the identity checks to fail)."""
    if isinstance(critic, GaussianCritic):
        return gaussian_critic_log_normaliser(critic.theta, cov_zp)
    if isinstance(critic, LinearCritic):
        return linear_critic_log_normaliser(critic.W, cov_zp)
    raise TypeError(f"unknown critic {critic!r}")


def log_normaliser(critic, cov_zp: np.ndarray, z: np.ndarray) -> np.ndarray:
    """log Z(z) at sample points z (n, dz)."""
    c, M = critic_log_normaliser(critic, cov_zp)
    return c - 0.5 * np.einsum("ni,ij,nj->n", z, M, z)


def squared_critic(critic):
    """The critic f² (for second moments of f / Z)."""
    if isinstance(critic, GaussianCritic):
        return GaussianCritic(critic.theta / math.sqrt(2.0))
    return LinearCritic(2.0 * critic.W)


def second_moment_finite(model: LinearGaussianRPM, critic) -> tuple[bool, float]:
    """Whether E_{R(z)R(z')}[(f/Z)²] is finite, i.e. a Monte Carlo estimate of ∫P = E[f/Z] has a finite variance.

    E[(f/Z)² | z] = Z₂(z)/Z(z)² with Z₂ the normaliser of f², so log E[(f/Z)²|z] = (c₂ - 2c) - ½ zᵀ(M₂ - 2M)z and
    its R(z)-expectation is finite iff K = Σ_z⁻¹ + M₂ - 2M ≻ 0. Returns (finite, smallest eigenvalue of K).
    """
    _, M = critic_log_normaliser(critic, model.cov_zp)
    _, M2 = critic_log_normaliser(squared_critic(critic), model.cov_zp)
    K = inv_spd(model.cov_z) + M2 - 2.0 * M
    lam = float(np.linalg.eigvalsh(0.5 * (K + K.T)).min())
    return lam > 0.0, lam


def joint_mass_finite(model: LinearGaussianRPM, critic) -> tuple[bool, float]:
    """Whether E_{R(z)R(z')}[f] = E_R(z)[Z(z)] is finite: exp(c - ½ zᵀMz) is integrable under N(0, Σ_z) iff
    Σ_z⁻¹ + M ≻ 0. Always true for the Gaussian critic (M ≻ 0); for the linear critic (M = -WΣ'Wᵀ) it is the
    Gaussian-MGF condition Σ_z⁻¹ - WΣ'Wᵀ ≻ 0. Z(z) itself is finite for every z either way, so P^InfoNCE is always
    proper; this only concerns normalising f over (z, z') jointly. Returns (finite, smallest eigenvalue)."""
    _, M = critic_log_normaliser(critic, model.cov_zp)
    K = inv_spd(model.cov_z) + M
    lam = float(np.linalg.eigvalsh(0.5 * (K + K.T)).min())
    return lam > 0.0, lam


def optimal_linear_W(model: LinearGaussianRPM) -> np.ndarray:
    """The maximiser of I_∞(W) for the linear critic: I_∞ = tr(W Cᵀ) - ½ tr(W Σ' Wᵀ Σ_z) is concave with
    gradient C - Σ_z W Σ', so W* = Σ_z⁻¹ C Σ'⁻¹."""
    return inv_spd(model.cov_z) @ model.cross @ inv_spd(model.cov_zp)


# -------------------------------------------------------------------------------------- priors as log-quadratics
@dataclass(frozen=True, eq=False)
class LogQuadratic:
    """log p(w) = log_const - ½ wᵀ Λ w over w = (z, z'); normalised iff log_const = -½ log det(2π Λ⁻¹)."""

    precision: np.ndarray
    log_const: float

    def log_density(self, w: np.ndarray) -> np.ndarray:
        return self.log_const - 0.5 * np.einsum("ni,ij,nj->n", w, self.precision, w)

    def log_mass(self) -> float:
        """log ∫ p (0 for a normalised density); +inf if Λ is not positive definite."""
        if not is_spd(self.precision):
            return math.inf
        d = self.precision.shape[0]
        return self.log_const + 0.5 * (d * LOG_2PI - logdet_spd(self.precision))


def gaussian_prior(cov: np.ndarray) -> LogQuadratic:
    """A normalised N(0, cov) prior over (z, z')."""
    return LogQuadratic(inv_spd(cov), gaussian_log_const(cov))


def optimal_prior(model: LinearGaussianRPM) -> LogQuadratic:
    """P*(z, z') = R(z, z') (Eq. 19)."""
    return gaussian_prior(model.cov_joint)


def infonce_prior(model: LinearGaussianRPM, critic) -> LogQuadratic:
    """P^InfoNCE of Eq. 21: log P = log R(z) + log R(z') + log f(z, z') - log Z(z), with Z from the critic's
    normaliser. Precision: diag(Σ_z⁻¹, Σ'⁻¹) + Q - diag(M, 0); log constant: those of R(z), R(z') minus c."""
    dz = model.dz
    c, M = critic_log_normaliser(critic, model.cov_zp)
    lam = np.zeros((2 * dz, 2 * dz))
    lam[:dz, :dz] = inv_spd(model.cov_z) - M
    lam[dz:, dz:] = inv_spd(model.cov_zp)
    lam += critic.Q(dz)
    log_const = gaussian_log_const(model.cov_z) + gaussian_log_const(model.cov_zp) - c
    return LogQuadratic(lam, log_const)


# ----------------------------------------------------------------------------------------------- the quantities
def elbo(model: LinearGaussianRPM, prior: LogQuadratic) -> float:
    """Eq. 16 without its constant: E_R[log P(z, z') - log R(z) - log R(z')], from the prior's own log density
    (its log constant included, so an unnormalised "prior" shows up here)."""
    e_log_p = prior.log_const - 0.5 * float(np.sum(prior.precision * model.cov_joint))
    e_log_rz = gaussian_log_const(model.cov_z) - 0.5 * model.dz
    e_log_rzp = gaussian_log_const(model.cov_zp) - 0.5 * model.dz
    return e_log_p - e_log_rz - e_log_rzp


def kl(model: LinearGaussianRPM, prior: LogQuadratic) -> float:
    """KL(R(z, z') ‖ N(0, Λ⁻¹)) (Eq. 18), the prior normalised as a Gaussian from its precision alone; +inf if
    Λ is not positive definite."""
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
    c, M = critic_log_normaliser(critic, model.cov_zp)
    return c - 0.5 * float(np.sum(M * model.cov_z))


def i_infinity(model: LinearGaussianRPM, critic) -> float:
    """I_∞ of Eq. 24 (without its constant): E_R[log f] - E_R(z)[log E_R(z')[f]]."""
    return expected_log_f(model, critic) - expected_log_normaliser(model, critic)


def i_infinity_gaussian_curve(model: LinearGaussianRPM, thetas) -> np.ndarray:
    return np.array([i_infinity(model, GaussianCritic(float(t))) for t in thetas])


def argmax_theta(model: LinearGaussianRPM, lo: float = None, hi: float = None, iters: int = 200) -> float:
    """The maximiser of the closed-form I_∞(θ) for the Gaussian critic: a log-spaced grid, then golden-section
    search on log θ around the best grid point."""
    scale = math.sqrt(float(np.trace(model.cov_joint)) / (2 * model.dz))
    lo = math.log(lo if lo is not None else 1e-3 * scale)
    hi = math.log(hi if hi is not None else 1e3 * scale)
    grid = np.linspace(lo, hi, 121)
    vals = [i_infinity(model, GaussianCritic(math.exp(g))) for g in grid]
    k = int(np.argmax(vals))
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    g = (math.sqrt(5) - 1) / 2
    fun = lambda u: -i_infinity(model, GaussianCritic(math.exp(u)))  # noqa: E731
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = fun(c), fun(d)
    for _ in range(iters):
        if b - a < 1e-12:
            break
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = fun(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = fun(d)
    return math.exp(0.5 * (a + b))


def theta_star_is_interior(model: LinearGaussianRPM, theta_star: float) -> bool:
    """Whether argmax_theta found an interior maximiser (not within 1% of its search range's ends)."""
    scale = math.sqrt(float(np.trace(model.cov_joint)) / (2 * model.dz))
    return 1.01e-3 * scale < theta_star < 0.99e3 * scale


# ------------------------------------------------------------------------------------- App. B: ε → 0 asymptotics
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
def logsumexp(a: np.ndarray, axis=-1) -> np.ndarray:
    """log Σ exp(a) along `axis`, shifted by the maximum (one temporary, exponentiated in place)."""
    m = np.max(a, axis=axis, keepdims=True)
    m[~np.isfinite(m)] = 0.0
    t = np.subtract(a, m)
    np.exp(t, out=t)
    return np.log(np.sum(t, axis=axis)) + np.squeeze(m, axis=axis)


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
