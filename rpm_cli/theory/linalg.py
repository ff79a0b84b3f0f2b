"""Dense float64 linear algebra shared by the closed forms (symmetric positive definite matrices throughout), and
one golden-section search."""
import math

import numpy as np

LOG_2PI = math.log(2.0 * math.pi)


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


def log_gaussian_mgf_quadratic(mean: np.ndarray, cov: np.ndarray, K: np.ndarray) -> np.ndarray:
    """log E[exp(-½ wᵀKw)] for w ~ N(mean, cov), mean (n, d) or (d,): completing the square,
    -½ log det(I + cov K) - ½ mᵀ (I + K cov)⁻¹ K m. K may be indefinite; needs cov⁻¹ + K ≻ 0."""
    d = K.shape[0]
    sign, logdet = np.linalg.slogdet(np.eye(d) + cov @ K)
    if sign <= 0 or not is_spd(inv_spd(cov) + K):
        return np.full(np.shape(mean)[:-1], math.inf)
    B = np.linalg.solve(np.eye(d) + K @ cov, K)
    B = 0.5 * (B + B.T)
    return -0.5 * logdet - 0.5 * np.einsum("...i,ij,...j->...", mean, B, mean)


def logsumexp(a: np.ndarray, axis=-1) -> np.ndarray:
    """log Σ exp(a) along `axis`, shifted by the maximum (one temporary, exponentiated in place)."""
    m = np.max(a, axis=axis, keepdims=True)
    m[~np.isfinite(m)] = 0.0
    t = np.subtract(a, m)
    np.exp(t, out=t)
    return np.log(np.sum(t, axis=axis)) + np.squeeze(m, axis=axis)


def golden_section_max(fun, a: float, b: float, iters: int, tol: float = 0.0) -> float:
    """The maximiser of a unimodal fun on [a, b] by golden-section search (at most `iters` steps, stopping when
    the bracket is narrower than tol): the midpoint of the last bracket. Shared by θ* (closed-form I_∞) and the
    finite-N maximiser (`training`)."""
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = fun(c), fun(d)
    for _ in range(iters):
        if b - a < tol:
            break
        if fc > fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = fun(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = fun(d)
    return 0.5 * (a + b)
