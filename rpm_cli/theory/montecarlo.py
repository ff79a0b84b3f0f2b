"""Monte Carlo for the linear-Gaussian RPM: a code path independent of the closed forms.

Samples come from simulating the data process and the encoders (x, then x' = ρx + sqrt(1-ρ²)ξ, then
z = Ax + εη, z' = A'x' + εη'), never from a closed-form covariance. Log densities are evaluated pointwise from
matrices built here (R's marginals by integrating x out by hand) and each critic's normaliser Z(z) is written here
again, as a density evaluation rather than the (c, M) pair of `critics`. Every estimate comes with its standard
error (SE).

I_N follows Eq. 6 as written, the convention of `rpm_cli.objectives`: a batch of N + 1 pairs, every row an
anchor, its own second member the positive and the other N the negatives,
    I_N = mean_i [log f_ii - log Σ_j f_ij] + log N   (the sum over all N + 1 columns).
"""
import math

import numpy as np

from rpm_cli.theory.critics import GaussianCritic, LinearCritic
from rpm_cli.theory.linalg import LOG_2PI, logsumexp


# --------------------------------------------------------------------------------------------------- basics
def mean_se(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64).ravel()
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


def sample_primitives(model, n: int, rng: np.random.Generator) -> dict:
    """The standard normal draws behind n pairs: x, ξ (data) and η, η' (encoder noise)."""
    return {"x": rng.standard_normal((n, model.dx)), "xi": rng.standard_normal((n, model.dx)),
            "eta": rng.standard_normal((n, model.dz)), "etap": rng.standard_normal((n, model.dz))}


def encode(model, prim: dict, eps: float = None):
    """(z, z') from the primitive draws, with encoder noise eps (default the model's)."""
    eps = model.eps if eps is None else eps
    xp = model.rho * prim["x"] + math.sqrt(1.0 - model.rho ** 2) * prim["xi"]
    return prim["x"] @ model.A.T + eps * prim["eta"], xp @ model.Ap.T + eps * prim["etap"]


def sample_pairs(model, n: int, rng: np.random.Generator):
    """(z, z') ~ R(z, z') by simulation (Eq. 3-4)."""
    return encode(model, sample_primitives(model, n, rng))


def sample_zp(model, n: int, rng: np.random.Generator) -> np.ndarray:
    """z' ~ R(z') (a fresh x' ~ N(0, I), encoded)."""
    return rng.standard_normal((n, model.dx)) @ model.Ap.T + model.eps * rng.standard_normal((n, model.dz))


def gauss_logpdf(w: np.ndarray, cov: np.ndarray, mean=None) -> np.ndarray:
    """log N(w; mean, cov) row by row, by a triangular solve."""
    L = np.linalg.cholesky(cov)
    u = np.linalg.solve(L, (w if mean is None else w - mean).T)
    return -0.5 * np.sum(u * u, 0) - np.sum(np.log(np.diag(L))) - 0.5 * cov.shape[0] * LOG_2PI


class RecognitionDensities:
    """Pointwise log R(z), log R(z'), log R(z, z'), built by integrating x out of R(z|x) R_base(x):
    z = A x + ε η gives Cov z = A Aᵀ + ε² I, and Cov(z, z') = A Cov(x, x') A'ᵀ with Cov(x, x') = ρ I."""

    def __init__(self, model, eps: float = None):
        A, Ap, dz = model.A, model.Ap, model.dz
        eps = model.eps if eps is None else eps
        self.cov_z = A @ A.T + eps ** 2 * np.eye(dz)
        self.cov_zp = Ap @ Ap.T + eps ** 2 * np.eye(dz)
        cross = A @ (model.rho * np.eye(model.dx)) @ Ap.T
        self.cov_joint = np.block([[self.cov_z, cross], [cross.T, self.cov_zp]])

    def log_rz(self, z):
        return gauss_logpdf(z, self.cov_z)

    def log_rzp(self, zp):
        return gauss_logpdf(zp, self.cov_zp)

    def log_joint(self, z, zp):
        return gauss_logpdf(np.concatenate([z, zp], 1), self.cov_joint)


def log_normaliser(critic, dens: RecognitionDensities, z: np.ndarray) -> np.ndarray:
    """log Z(z) = log ∫ R(z') f(z, z') dz' (Eq. 22), written as a density. Gaussian critic: the convolution of
    two Gaussians, (2πθ²)^(dz/2) N(z; 0, Σ' + θ²I). Linear critic: E exp(zᵀWz') = exp(½ |Lᵀ Wᵀ z|²), L L' = Σ'."""
    dz = z.shape[1]
    if isinstance(critic, GaussianCritic):
        return 0.5 * dz * math.log(2 * math.pi * critic.theta ** 2) + gauss_logpdf(
            z, dens.cov_zp + critic.theta ** 2 * np.eye(dz))
    if isinstance(critic, LinearCritic):
        u = z @ critic.W @ np.linalg.cholesky(dens.cov_zp)
        return 0.5 * np.sum(u * u, 1)
    raise TypeError(f"no pointwise normaliser for {critic!r}; use the nested estimator")


def infonce_log_prior(model, critic, dens: RecognitionDensities = None):
    """log P^InfoNCE(z, z') = log R(z) + log R(z') + log f(z, z') - log Z(z) (Eq. 21-22), pointwise."""
    dens = dens or RecognitionDensities(model)
    return lambda z, zp: (dens.log_rz(z) + dens.log_rzp(zp) + critic.log_f(z, zp)
                          - log_normaliser(critic, dens, z))


def gaussian_log_prior(cov: np.ndarray, mean=None):
    """log N((z, z'); mean, cov), pointwise."""
    return lambda z, zp: gauss_logpdf(np.concatenate([z, zp], 1), cov, mean)


# ------------------------------------------------------------------------------------- Eq. 5, 16, 18 by sampling
def mc_terms(model, log_priors: dict, n: int, rng) -> dict:
    """On one sample of n pairs (common random numbers): per-sample MI (Eq. 5), ELBO (Eq. 16) and KL (Eq. 18)
    integrands for each prior, as (mean, SE)."""
    dens = RecognitionDensities(model)
    z, zp = sample_pairs(model, n, rng)
    log_rz, log_rzp, log_r = dens.log_rz(z), dens.log_rzp(zp), dens.log_joint(z, zp)
    out = {"mi": mean_se(log_r - log_rz - log_rzp)}
    for name, log_p in log_priors.items():
        lp = log_p(z, zp)
        out[f"elbo/{name}"] = mean_se(lp - log_rz - log_rzp)
        out[f"kl/{name}"] = mean_se(log_r - lp)
    return out


def mc_prior_mass(model, critic, n: int, rng) -> tuple[float, float]:
    """∫ P^InfoNCE = E_{R(z) R(z')}[f(z, z') / Z(z)] with z, z' drawn independently (should be 1)."""
    dens = RecognitionDensities(model)
    z, _ = sample_pairs(model, n, rng)
    zp = sample_zp(model, n, rng)
    return mean_se(np.exp(critic.log_f(z, zp) - log_normaliser(critic, dens, z)))


def mc_normaliser_at_anchors(model, critic, anchors: np.ndarray, k: int, rng):
    """Z(z) = E_R(z')[f(z, z')] (Eq. 22) at fixed anchors z: the mean of f over k simulated z' ~ R(z') shared by
    the anchors, and its SE per anchor (E[f²|z] is finite at every fixed z, even where E_z[(f/Z)²] is not)."""
    f = np.exp(critic.log_f_matrix(anchors, sample_zp(model, k, rng)))
    return f.mean(1), f.std(1, ddof=1) / math.sqrt(k)


def mc_i_infinity_differences(model, critics: list, z: np.ndarray, zp: np.ndarray) -> list:
    """I_∞(critic_k) - I_∞(critic_0) on one set of simulated pairs (common random numbers): the mean over pairs of
    the per-pair difference of log f(z, z') - log Z(z), Z from this module's `log_normaliser`; (mean, SE) each."""
    dens = RecognitionDensities(model)
    h = [c.log_f(z, zp) - log_normaliser(c, dens, z) for c in critics]
    return [mean_se(hk - h[0]) for hk in h[1:]]


def mc_i_infinity_nested(model, critic, n_pairs: int, n_anchors: int, k_inner: int, groups: int, rng) -> dict:
    """I_∞ (Eq. 24) = E_R[log f] - E_R(z)[log Z(z)] with Z(z) = E_R(z')[f] itself sampled: E[log f] over n_pairs
    simulated pairs; log Z(z) per anchor z as the log of the mean of f over k_inner fresh z' ~ R(z') shared by the
    anchor's group (SE over groups). The log of a mean is biased down by Var(f)/(2K Z²) to first order; that bias
    is estimated from the same samples and added back to E[log Z] ('bias' is the correction). Control variate for
    the spread of log Z over anchors: the quadratic features z zᵀ, whose mean Σ_z is this module's own
    (RecognitionDensities), with regression coefficients fitted on all anchors; the sampled Ẑ(z) is all that enters."""
    z, zp = sample_pairs(model, n_pairs, rng)
    e_log_f, e_log_f_se = mean_se(critic.log_f(z, zp))
    per = max(n_anchors // groups, 2)
    iu = np.triu_indices(model.dz)
    cov_z = RecognitionDensities(model).cov_z[iu]
    ys, xs, biases = [], [], []
    for _ in range(groups):
        anchors, _ = sample_pairs(model, per, rng)
        lf = critic.log_f_matrix(anchors, sample_zp(model, k_inner, rng))        # (per, K)
        log_z_hat = logsumexp(lf, axis=1) - math.log(k_inner)
        ratio = np.exp(lf - log_z_hat[:, None])                                # f / Ẑ
        bias = ratio.var(axis=1, ddof=1) / (2 * k_inner)
        biases.append(float(np.mean(bias)))
        ys.append(log_z_hat + bias)
        xs.append((anchors[:, :, None] * anchors[:, None, :])[:, iu[0], iu[1]] - cov_z)
    y, x = np.stack(ys), np.stack(xs)                                          # (groups, per), (groups, per, p)
    beta = np.linalg.lstsq(x.reshape(-1, x.shape[-1]), y.ravel() - y.mean(), rcond=None)[0]
    e_log_z, e_log_z_se = mean_se((y - x @ beta).mean(1))
    return {"value": e_log_f - e_log_z, "se": math.hypot(e_log_f_se, e_log_z_se), "e_log_f": e_log_f,
            "e_log_z": e_log_z, "e_log_z_se_without_control": mean_se(y.mean(1))[1],
            "bias": float(np.mean(biases)), "k_inner": k_inner, "anchors": per * groups}


# ------------------------------------------------------------------------------- Eq. 12 with a free Gaussian Q
def mc_gaussian_q_elbo(model, log_prior, x: np.ndarray, xp: np.ndarray, means: np.ndarray, covs: np.ndarray,
                       n: int, rng, chunk: int = 8192) -> dict:
    """Eq. 12 per data pair by sampling w ~ Q_i = N(means[i], covs[i]) and evaluating the integrand
    log P(w) - log R(z) - log R(z') + log R(z|x_i) R(z'|x'_i) - log Q_i(w) pointwise: P and R as in this module,
    the encoder as the isotropic N((A x_i, A' x'_i), ε² I), and Q_i at w = mean + L u (L Lᵀ = cov) as
    -½|u|² - log det L - (D/2) log 2π. Antithetic pairs w = mean ± L u cancel the integrand's odd part, which
    dominates at small ε. n antithetic pairs per data pair, `chunk` at a time. Returns the mean over pairs, its SE
    (each pair's SE over its antithetic pairs, combined) and the raw integrand values, (pairs, 2n)."""
    dens = RecognitionDensities(model)
    codes = np.concatenate([x @ model.A.T, xp @ model.Ap.T], 1)
    d, D, eps = model.dz, codes.shape[1], model.eps
    values = []
    for code, mean, cov in zip(codes, means, covs):
        L = np.linalg.cholesky(cov)
        log_q_const = -np.sum(np.log(np.diag(L))) - 0.5 * D * LOG_2PI
        parts = []
        for start in range(0, n, chunk):
            u = rng.standard_normal((min(chunk, n - start), D))
            u = np.concatenate([u, -u])
            w = mean + u @ L.T
            z, zp = w[:, :d], w[:, d:]
            log_enc = -0.5 * np.sum((w - code) ** 2, 1) / eps ** 2 - D * math.log(eps) - 0.5 * D * LOG_2PI
            log_q = -0.5 * np.sum(u * u, 1) + log_q_const
            v = log_prior(z, zp) - dens.log_rz(z) - dens.log_rzp(zp) + log_enc - log_q
            half = v.size // 2
            parts.append((v[:half], v[half:]))
        values.append(np.concatenate([p[0] for p in parts] + [p[1] for p in parts]))
    values = np.stack(values)
    paired = 0.5 * (values[:, :n] + values[:, n:])
    se = paired.std(1, ddof=1) / math.sqrt(n)
    return {"value": float(paired.mean()), "se": float(np.sqrt(np.sum(se ** 2)) / len(se)), "values": values}


# ---------------------------------------------------------------------------------------------- I_N (Eq. 6-7)
def pairs_per_batch(N: int) -> int:
    """A batch holds the positive pair and N negative pairs (Eq. 6)."""
    return N + 1


def info_nce_rows(log_f: np.ndarray, positives: np.ndarray, N: int) -> np.ndarray:
    """Eq. 6 per anchor row: log f₊ - log Σ_{all N + 1 columns} f + log N."""
    return positives - logsumexp(log_f, axis=-1) + math.log(N)


def _batched_log_f(critic, z, zp):
    """log f over a stack of batches: z, zp (nb, B, dz) -> (nb, B, B)."""
    if isinstance(critic, GaussianCritic):
        d2 = (np.sum(z * z, -1)[:, :, None] + np.sum(zp * zp, -1)[:, None, :]
              - 2.0 * np.einsum("bid,bjd->bij", z, zp))
        return -0.5 * np.maximum(d2, 0.0) / critic.theta ** 2
    return np.stack([critic.log_f_matrix(a, b) for a, b in zip(z, zp)])


def mc_info_nce(model, critic, N: int, rows: int, min_batches: int, rng, control: bool = False,
                budget: int = 1 << 21) -> dict:
    """I_N for N negatives from batches of pairs_per_batch(N) pairs of R(z, z'); SE over batches (rows of one
    batch share negatives). With `control`, also I_N - I_∞ with two per-row control variates whose means are
    known: h = log f₊ - log Z(z) (E h = I_∞) and u = mean_j f(z, z'_j)/Z(z) - 1 over the negatives (E u = 0),
    Z from `log_normaliser`; y - h + u is log N Z/(f₊ + N Ẑ) + (Ẑ/Z - 1), whose first-order fluctuation cancels.
    At most `budget` log f entries are held at once."""
    B = pairs_per_batch(N)
    n_batches = max(min_batches, math.ceil(rows / B))
    dens = RecognitionDensities(model) if control else None
    vals, diffs, worst = [], [], -math.inf
    done = 0
    while done < n_batches:
        nb = max(1, min(n_batches - done, budget // (B * B)))
        z, zp = sample_pairs(model, nb * B, rng)
        if nb > 1:                                   # many small batches at once: (nb, B, B)
            lf = _batched_log_f(critic, z.reshape(nb, B, -1), zp.reshape(nb, B, -1))
            ys = info_nce_rows(lf, np.diagonal(lf, axis1=1, axis2=2), N)
        else:                                        # one large batch, a block of rows at a time
            step = max(1, budget // B)
            ys = np.concatenate([info_nce_rows(critic.log_f_matrix(z[r:r + step], zp), critic.log_f(
                z[r:r + step], zp[r:r + step]), N) for r in range(0, B, step)])[None]
        vals.extend(ys.mean(1).tolist())
        worst = max(worst, float(ys.mean(1).max()) - math.log(N))
        if control:
            pos = critic.log_f(z, zp).reshape(ys.shape)
            log_z = log_normaliser(critic, dens, z).reshape(ys.shape)
            log_sum = pos + math.log(N) - ys                           # log Σ_{N+1 columns} f, row by row
            u = (np.exp(log_sum - log_z) - np.exp(pos - log_z)) / N - 1.0  # mean of f/Z over negatives, minus 1
            diffs.extend((ys - (pos - log_z) + u).mean(1).tolist())
        done += nb
    value, se = mean_se(vals)
    out = {"N": N, "value": value, "se": se, "batches": len(vals), "max_minus_log_n": worst}
    if control:
        out["minus_i_inf"], out["minus_i_inf_se"] = mean_se(diffs)
    return out


def mc_ratio_moments(model, critic, n: int, rng, rao_blackwell: bool = False) -> dict:
    """E_pos[f/Z] and E_{R(z)R(z')}[(f/Z)²], the two moments in the first-order slope b of I_N (Eq. 6-7). The
    plain second moment averages (f/Z)² at independent simulated z, z' (its SE needs E[(f/Z)⁴] < ∞); with
    `rao_blackwell` it averages E[f²|z]/Z(z)² = Z_{f²}(z)/Z(z)² at simulated z instead, both normalisers from this
    module's `log_normaliser` (its SE needs only E[(Z_{f²}/Z²)²] < ∞)."""
    dens = RecognitionDensities(model)
    z, zp = sample_pairs(model, n, rng)
    log_z = log_normaliser(critic, dens, z)
    pos = np.exp(critic.log_f(z, zp) - log_z)
    if rao_blackwell:
        sq = (GaussianCritic(critic.theta / math.sqrt(2.0)) if isinstance(critic, GaussianCritic)
              else LinearCritic(2.0 * critic.W))
        neg = np.exp(log_normaliser(sq, dens, z) - 2 * log_z)
    else:
        neg = np.exp(2 * (critic.log_f(z, sample_zp(model, n, rng)) - log_z))
    return {"positive_mean": mean_se(pos), "negative_second_moment": mean_se(neg)}
