"""Monte Carlo estimators for the linear-Gaussian RPM: an independent code path to `gaussian`.

Samples come from simulating the data process and the encoders (x, then x' = ρx + sqrt(1-ρ²)ξ, then
z = Ax + εη, z' = A'x' + εη'), never from the closed-form covariance; log densities are evaluated pointwise.
The only closed-form pieces used are pointwise ones that *define* a density (R's Gaussian marginals, the
critic's normaliser log Z(z) inside log P^InfoNCE, the mixture Z(z) of App. A.1), never the expectation
formulas (traces, log-dets of expectations) of `gaussian`. Every estimate comes with its standard error.

I_N follows Eq. 6 as written, the convention of `rpm_cli.objectives`: a square (K, K) matrix of log f with the
positives on the diagonal gives N = K - 1 negatives and
    I_N = mean_i [log f_ii - log Σ_j f_ij] + log N   (the sum over all K columns).
"""
import math

import numpy as np

from rpm_cli.theory import gaussian


# --------------------------------------------------------------------------------------------------- basics
def mean_se(values: np.ndarray) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64).ravel()
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


def sample_pairs(model, n: int, rng: np.random.Generator):
    """(z, z') ~ R(z, z') by simulation (Eq. 3-4)."""
    x = rng.standard_normal((n, model.dx))
    xp = model.rho * x + math.sqrt(1.0 - model.rho ** 2) * rng.standard_normal((n, model.dx))
    z = x @ model.A.T + model.eps * rng.standard_normal((n, model.dz))
    zp = xp @ model.Ap.T + model.eps * rng.standard_normal((n, model.dz))
    return z, zp


def sample_zp(model, n: int, rng: np.random.Generator) -> np.ndarray:
    """z' ~ R(z') (a fresh x' ~ N(0, I), encoded)."""
    return rng.standard_normal((n, model.dx)) @ model.Ap.T + model.eps * rng.standard_normal((n, model.dz))


def _gauss_logpdf(w: np.ndarray, cov: np.ndarray) -> np.ndarray:
    L = np.linalg.cholesky(cov)
    u = np.linalg.solve(L, w.T)
    return -0.5 * np.sum(u * u, 0) - np.sum(np.log(np.diag(L))) - 0.5 * cov.shape[0] * math.log(2 * math.pi)


class RecognitionDensities:
    """Pointwise log R(z), log R(z'), log R(z, z') of the linear-Gaussian recognition joint, built by integrating x
    out of R(z|x) R_base(x): R(z) = N(0, AAᵀ + ε²I), and Cov(z, z') = A Cov(x, x') A'ᵀ = ρ A A'ᵀ."""

    def __init__(self, model):
        A, Ap, rho, eps, dz = model.A, model.Ap, model.rho, model.eps, model.dz
        self.cov_z = A @ A.T + eps ** 2 * np.eye(dz)
        self.cov_zp = Ap @ Ap.T + eps ** 2 * np.eye(dz)
        cross = A @ (rho * np.eye(model.dx)) @ Ap.T
        self.cov_joint = np.block([[self.cov_z, cross], [cross.T, self.cov_zp]])

    def log_rz(self, z):
        return _gauss_logpdf(z, self.cov_z)

    def log_rzp(self, zp):
        return _gauss_logpdf(zp, self.cov_zp)

    def log_joint(self, z, zp):
        return _gauss_logpdf(np.concatenate([z, zp], 1), self.cov_joint)


def infonce_log_prior(model, critic, dens: RecognitionDensities = None):
    """log P^InfoNCE(z, z') = log R(z) + log R(z') + log f(z, z') - log Z(z) (Eq. 21-22), pointwise."""
    dens = dens or RecognitionDensities(model)

    def log_p(z, zp):
        return (dens.log_rz(z) + dens.log_rzp(zp) + critic.log_f(z, zp)
                - gaussian.log_normaliser(critic, dens.cov_zp, z))
    return log_p


def gaussian_log_prior(cov: np.ndarray):
    """log N((z, z'); 0, cov), pointwise."""
    return lambda z, zp: _gauss_logpdf(np.concatenate([z, zp], 1), cov)


def optimal_log_prior(model):
    """P* = R(z, z') (Eq. 19)."""
    return RecognitionDensities(model).log_joint


# ------------------------------------------------------------------------------------- Eq. 5, 16, 18 by sampling
def mc_mutual_information(model, n: int, rng) -> tuple[float, float]:
    """MI = E_R[log R(z, z') - log R(z) - log R(z')] (Eq. 5)."""
    dens = RecognitionDensities(model)
    z, zp = sample_pairs(model, n, rng)
    return mean_se(dens.log_joint(z, zp) - dens.log_rz(z) - dens.log_rzp(zp))


def mc_elbo(model, log_prior, n: int, rng) -> tuple[float, float]:
    """Eq. 16 without its constant: E_R[log P(z, z') - log R(z) - log R(z')]."""
    dens = RecognitionDensities(model)
    z, zp = sample_pairs(model, n, rng)
    return mean_se(log_prior(z, zp) - dens.log_rz(z) - dens.log_rzp(zp))


def mc_kl(model, log_prior, n: int, rng) -> tuple[float, float]:
    """KL(R(z, z') ‖ P(z, z')) = E_R[log R(z, z') - log P(z, z')] (Eq. 18)."""
    dens = RecognitionDensities(model)
    z, zp = sample_pairs(model, n, rng)
    return mean_se(dens.log_joint(z, zp) - log_prior(z, zp))


def mc_prior_mass(model, critic, n: int, rng) -> tuple[float, float]:
    """∫ P^InfoNCE = E_{R(z) R(z')}[f(z, z') / Z(z)] with z, z' drawn independently (should be 1)."""
    dens = RecognitionDensities(model)
    z, _ = sample_pairs(model, n, rng)
    zp = sample_zp(model, n, rng)
    return mean_se(np.exp(critic.log_f(z, zp) - gaussian.log_normaliser(critic, dens.cov_zp, z)))


def mc_i_infinity_nested(model, critic, n_outer: int, k_inner: int, groups: int, rng) -> dict:
    """I_∞ (Eq. 24) with Z(z) = E_R(z')[f] itself estimated by sampling: for each anchor, log of the mean of f over
    k_inner fresh z' ~ R(z'). Anchors come in `groups` groups sharing one set of z' (SE over groups). The
    log-of-a-mean is biased up by ≈ Var(f)/(2K Z²) per anchor; that first-order bias is estimated from the same
    samples and returned as `bias`."""
    per = max(n_outer // groups, 2)
    vals, biases = [], []
    for _ in range(groups):
        z, zp = sample_pairs(model, per, rng)
        neg = sample_zp(model, k_inner, rng)
        lf = critic.log_f_matrix(z, neg)                                   # (per, K)
        log_z_hat = gaussian.logsumexp(lf, axis=1) - math.log(k_inner)
        ratio = np.exp(lf - log_z_hat[:, None])                            # f / Ẑ
        biases.append(float(np.mean(ratio.var(axis=1, ddof=1) / (2 * k_inner))))
        vals.append(float(np.mean(critic.log_f(z, zp) - log_z_hat)))
    mean, se = mean_se(np.array(vals))
    return {"value": mean, "se": se, "bias": float(np.mean(biases)), "k_inner": k_inner, "anchors": per * groups}


# ---------------------------------------------------------------------------------------------- I_N (Eq. 6-7)
def info_nce_np(log_f: np.ndarray) -> float:
    """I_N of one square (K, K) log-f matrix, positives on the diagonal, N = K - 1 (Eq. 6 as written; the same
    convention as `rpm_cli.objectives.info_nce_estimate_full`)."""
    K = log_f.shape[0]
    return float(np.mean(np.diag(log_f) - gaussian.logsumexp(log_f, axis=1)) + math.log(K - 1))


def _batched_log_f(critic, z, zp):
    """log f over a stack of batches: z, zp (nb, B, dz) -> (nb, B, B)."""
    if isinstance(critic, gaussian.GaussianCritic):
        d2 = (np.sum(z * z, -1)[:, :, None] + np.sum(zp * zp, -1)[:, None, :]
              - 2.0 * np.einsum("bid,bjd->bij", z, zp))
        return -0.5 * np.maximum(d2, 0.0) / critic.theta ** 2
    return np.einsum("bid,de,bje->bij", z, critic.W, zp)


def mc_info_nce(model, critic, N: int, rows: int, min_batches: int, rng, with_bias: bool = False,
                chunk_rows: int = 256, bias_batches: int = 2) -> dict:
    """I_N for N negatives: batches of B = N + 1 pairs from R(z, z'), every row an anchor, the other B - 1 second
    members its negatives. SE over batches (rows of one batch share negatives). Also the largest per-batch
    I_N - log N (≤ 0 always) and, with `with_bias`, the first-order finite-N bias of I_N relative to I_∞
    estimated from the first `bias_batches` batches (Ẑ_i the mean of row i's N negatives):
        I_N - I_∞ ≈ -(1/N) mean_i[f_ii / Ẑ_i] + (1/(2N)) mean_i[Var_j(f_ij) / Ẑ_i²].
    The (B, B) matrix is formed chunk_rows rows at a time."""
    B = N + 1
    n_batches = max(min_batches, math.ceil(rows / B))
    vals, bias = [], []
    if B <= chunk_rows and not with_bias:                                # small batches: many at once, (nb, B, B)
        per = max(1, (chunk_rows * chunk_rows * 16) // (B * B))
        done = 0
        while done < n_batches:
            nb = min(per, n_batches - done)
            z, zp = sample_pairs(model, nb * B, rng)
            z, zp = z.reshape(nb, B, -1), zp.reshape(nb, B, -1)
            lf = np.stack([critic.log_f_matrix(z[k], zp[k]) for k in range(nb)]) if nb < 8 else \
                _batched_log_f(critic, z, zp)
            pos = np.diagonal(lf, axis1=1, axis2=2)
            vals.extend((np.mean(pos - gaussian.logsumexp(lf, axis=2), axis=1) + math.log(N)).tolist())
            done += nb
        n_batches = 0
    for batch in range(n_batches):
        z, zp = sample_pairs(model, B, rng)
        terms, bterms = [], []
        for r0 in range(0, B, chunk_rows):
            r1 = min(B, r0 + chunk_rows)
            lf = critic.log_f_matrix(z[r0:r1], zp)                     # rows r0..r1 of the batch's matrix
            rows_idx = np.arange(r1 - r0)
            pos = lf[rows_idx, rows_idx + r0].copy()
            terms.append(pos - gaussian.logsumexp(lf, axis=1))
            if with_bias and N >= 2 and batch < bias_batches:
                lf[rows_idx, rows_idx + r0] = -np.inf                  # negatives only
                log_s1 = gaussian.logsumexp(lf, axis=1)
                log_s2 = gaussian.logsumexp(2.0 * lf, axis=1)
                log_zhat = log_s1 - math.log(N)
                mean_r2 = np.exp(log_s2 - 2.0 * log_zhat - math.log(N))  # mean_j (f_ij/Ẑ_i)², mean_j f/Ẑ = 1
                var_r = (mean_r2 - 1.0) * N / (N - 1)
                bterms.append(-np.exp(pos - log_zhat) / N + var_r / (2 * N))
        vals.append(float(np.mean(np.concatenate(terms))) + math.log(N))
        if bterms:
            bias.append(float(np.mean(np.concatenate(bterms))))
    vals = np.array(vals)
    mean, se = mean_se(vals) if vals.size > 1 else (float(vals[0]), math.nan)
    return {"N": N, "value": mean, "se": se, "batches": int(vals.size),
            "max_minus_log_n": float(np.max(vals - math.log(N))),
            "bias_1st_order": float(np.mean(bias)) if bias else None}


# ------------------------------------------------------------------------------- learning θ (item 5): torch
def learn_theta(model, batch_size: int, steps: int, lr: float, theta_init: float, seeds,
                average_last: float = 0.5) -> list[dict]:
    """Maximise I_N (N = batch_size - 1, Eq. 6) over the Gaussian critic's log θ with Adam on fresh minibatches
    from R(z, z'), one independent run per seed. The runs are stacked into one vector of log θ: Adam acts per
    coordinate and each coordinate's loss sees only its own minibatch, so this is exactly len(seeds) separate
    runs. Returns per seed the trajectory and the Polyak average of θ over the last `average_last` of steps."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)                            # tiny tensors: threads only add overhead
    try:
        return _learn_theta(model, batch_size, steps, lr, theta_init, seeds, average_last)
    finally:
        torch.set_num_threads(threads)


def _learn_theta(model, batch_size, steps, lr, theta_init, seeds, average_last):
    import torch

    from rpm_cli.objectives import info_nce

    rngs = [np.random.default_rng(s) for s in seeds]
    torch.manual_seed(int(seeds[0]))
    log_theta = torch.full((len(seeds),), math.log(theta_init), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([log_theta], lr=lr)
    traj = np.zeros((steps, len(seeds)))
    for t in range(steps):
        pairs = [sample_pairs(model, batch_size, r) for r in rngs]
        z = torch.from_numpy(np.stack([p[0] for p in pairs]))
        zp = torch.from_numpy(np.stack([p[1] for p in pairs]))
        d2 = torch.cdist(z, zp).pow(2)                                  # (S, B, B)
        log_f = -0.5 * d2 / torch.exp(2 * log_theta)[:, None, None]
        loss = sum(info_nce(log_f[k]) for k in range(len(seeds)))      # each = log N - I_N on its batch
        opt.zero_grad()
        loss.backward()
        opt.step()
        traj[t] = log_theta.detach().numpy()
    start = int(steps * (1 - average_last))
    return [{"seed": int(s), "theta": math.exp(float(traj[start:, k].mean())),
             "theta_final": math.exp(float(traj[-1, k])), "log_theta_trajectory": traj[:, k].tolist()}
            for k, s in enumerate(seeds)]


class FiniteNObjective:
    """E[I_N(θ)] for the Gaussian critic on one fixed set of batches (common random numbers), so it is a smooth,
    deterministic function of θ whose maximiser estimates argmax_θ E[I_N(θ)] (what minibatch training targets)."""

    def __init__(self, model, N: int, batches: int, rng):
        B = N + 1
        z, zp = sample_pairs(model, batches * B, rng)
        z, zp = z.reshape(batches, B, -1), zp.reshape(batches, B, -1)
        self.d2 = -2.0 * _batched_log_f(gaussian.GaussianCritic(1.0), z, zp)   # squared distances
        self.N = N

    def per_batch(self, theta: float) -> np.ndarray:
        lf = self.d2 * (-0.5 / theta ** 2)
        return (np.mean(np.diagonal(lf, axis1=1, axis2=2) - gaussian.logsumexp(lf, axis=2), axis=1)
                + math.log(self.N))

    def __call__(self, theta: float) -> float:
        return float(np.mean(self.per_batch(theta)))

    def argmax(self, lo: float, hi: float, iters: int = 40) -> dict:
        """Golden-section search on log θ in [lo, hi]; the SE of the maximiser by the delta method,
        SE(θ̂) = SE(mean_b g_b'(θ̂)) / |g''(θ̂)|, derivatives by central differences in log θ."""
        a, b = math.log(lo), math.log(hi)
        gr = (math.sqrt(5) - 1) / 2
        c, d = b - gr * (b - a), a + gr * (b - a)
        fc, fd = self(math.exp(c)), self(math.exp(d))
        for _ in range(iters):
            if fc > fd:
                b, d, fd = d, c, fc
                c = b - gr * (b - a)
                fc = self(math.exp(c))
            else:
                a, c, fc = c, d, fd
                d = a + gr * (b - a)
                fd = self(math.exp(d))
        u = 0.5 * (a + b)
        h = 0.02
        gm, g0, gp = (self.per_batch(math.exp(u + k * h)) for k in (-1, 0, 1))
        d1 = (gp - gm) / (2 * h)                                   # per-batch slopes in log θ
        d2 = float(np.mean(gp - 2 * g0 + gm)) / h ** 2
        se_u = float(d1.std(ddof=1) / math.sqrt(d1.size)) / abs(d2)
        theta = math.exp(u)
        return {"theta": theta, "se": theta * se_u, "at_boundary": not (math.log(lo) + 1e-3 < u < math.log(hi) - 1e-3)}


# ------------------------------------------------------------------- App. A.1 / C: the empirical-marginal RPM
def make_dataset(model, M: int, rng):
    """M pairs (x_i, x'_i) from the data process and their deterministic codes g_i = A x_i, g'_i = A' x'_i."""
    x = rng.standard_normal((M, model.dx))
    xp = model.rho * x + math.sqrt(1.0 - model.rho ** 2) * rng.standard_normal((M, model.dx))
    return x @ model.A.T, xp @ model.Ap.T


def _iso_logpdf(z: np.ndarray, mean: np.ndarray, eps: float) -> np.ndarray:
    d = z.shape[-1]
    return -0.5 * np.sum((z - mean) ** 2, -1) / eps ** 2 - d * math.log(eps) - 0.5 * d * math.log(2 * math.pi)


def _mixture_logpdf(z: np.ndarray, centres: np.ndarray, eps: float) -> np.ndarray:
    """log R(z) = log (1/M) Σ_k N(z; g_k, ε² I) (Eq. 29), pointwise."""
    d = z.shape[-1]
    log_k = gaussian.GaussianCritic(eps).log_f_matrix(z, centres)     # -|z - g_k|² / (2ε²)
    return (gaussian.logsumexp(log_k, axis=1) - math.log(centres.shape[0])
            - d * math.log(eps) - 0.5 * d * math.log(2 * math.pi))


def empirical_elbo(g, gp, eps: float, theta: float, samples: int, rng) -> dict:
    """Eq. 15 (without its constant) on each positive pair (x_i, x'_i), averaged over i:
    E_{N(z; g_i, ε²) N(z'; g'_i, ε²)}[log f(z, z') - log Z(z)], Z the mixture normaliser of App. A.1."""
    M, dz = g.shape
    critic = gaussian.GaussianCritic(theta)
    z = g[:, None, :] + eps * rng.standard_normal((M, samples, dz))
    zp = gp[:, None, :] + eps * rng.standard_normal((M, samples, dz))
    h = (critic.log_f(z, zp).reshape(M, samples)
         - gaussian.empirical_log_normaliser(z.reshape(-1, dz), gp, eps, theta).reshape(M, samples))
    per_pair = h.mean(1)
    se = math.sqrt(float(np.sum(h.var(axis=1, ddof=1) / samples))) / M
    return {"value": float(per_pair.mean()), "se": se}


def _is_log_weights(g, gp, i_idx, j_idx, eps, theta, samples, rng):
    """Importance weights for P(x_i, x'_j) (Eq. 48-50) with proposal q = R(z|x_i) R(z'|x'_j), every factor of
    P(z, z') P(x_i|z) P(x'_j|z') / q evaluated from its own density:
      P(z, z') = R(z) R(z') f(z, z') / Z(z)                 (Eq. 21, R the mixtures of Eq. 29)
      P(x_i | z) = R(z | x_i) R_base(x_i) / R(z), R_base(x_i) = 1/M   (Eq. 10, as a mass over indices)
    Returns log w (pairs, samples) with the constant log R_base(x_i) R_base(x'_j) = -2 log M added back."""
    M, dz = g.shape
    critic = gaussian.GaussianCritic(theta)
    P = len(i_idx)
    z = (g[i_idx][:, None, :] + eps * rng.standard_normal((P, samples, dz))).reshape(-1, dz)
    zp = (gp[j_idx][:, None, :] + eps * rng.standard_normal((P, samples, dz))).reshape(-1, dz)
    mu, mup = np.repeat(g[i_idx], samples, 0), np.repeat(gp[j_idx], samples, 0)
    log_rz, log_rzp = _mixture_logpdf(z, g, eps), _mixture_logpdf(zp, gp, eps)
    log_prior = log_rz + log_rzp + critic.log_f(z, zp) - gaussian.empirical_log_normaliser(z, gp, eps, theta)
    log_lik_x = _iso_logpdf(z, mu, eps) - math.log(M) - log_rz
    log_lik_xp = _iso_logpdf(zp, mup, eps) - math.log(M) - log_rzp
    log_q = _iso_logpdf(z, mu, eps) + _iso_logpdf(zp, mup, eps)
    log_w = log_prior + log_lik_x + log_lik_xp - log_q + 2.0 * math.log(M)
    return log_w.reshape(P, samples)


def empirical_log_marginal(g, gp, eps: float, theta: float, samples: int, rng) -> dict:
    """log P(x_i, x'_i) (Eq. 50, without its constant) by importance sampling, averaged over the M positive pairs.
    Per pair: log of the mean weight, SE by the delta method; `bias` is the estimated first-order downward bias of
    a log-of-a-mean (Var(w)/(2K w̄²)). `jensen_gap` is mean_i[log mean_k w - mean_k log w] on the same samples,
    with its delta-method SE."""
    M = g.shape[0]
    idx = np.arange(M)
    log_w = _is_log_weights(g, gp, idx, idx, eps, theta, samples, rng)
    log_mean = gaussian.logsumexp(log_w, axis=1) - math.log(samples)
    w = np.exp(log_w - log_mean[:, None])                      # normalised weights, mean 1
    rel_var = w.var(axis=1, ddof=1)
    se = math.sqrt(float(np.sum(rel_var / samples))) / M
    gap = log_mean - log_w.mean(1)
    # delta method: the influence of log w̄ is w/w̄ - 1, that of mean(log w) is log w - mean(log w)
    gap_se = math.sqrt(float(np.sum(np.var(w - log_w, axis=1, ddof=1) / samples))) / M
    return {"value": float(log_mean.mean()), "se": se, "bias": float(np.mean(rel_var / (2 * samples))),
            "jensen_gap": float(gap.mean()), "jensen_gap_se": gap_se}


def empirical_pair_probabilities(g, gp, eps: float, theta: float, samples: int, rng) -> dict:
    """P(i, j) = F(x_i, x'_j) / M² of Eq. 34 for every index pair, F by importance sampling (unbiased for F).
    Returns the matrix, its total and the SE of the total."""
    M = g.shape[0]
    ii, jj = np.meshgrid(np.arange(M), np.arange(M), indexing="ij")
    log_w = _is_log_weights(g, gp, ii.ravel(), jj.ravel(), eps, theta, samples, rng) - 2.0 * math.log(M)
    w = np.exp(log_w)                                          # F(x_i, x'_j) / M² per sample
    P = w.mean(1).reshape(M, M)
    se_total = math.sqrt(float(np.sum(w.var(axis=1, ddof=1) / samples)))
    return {"P": P, "total": float(P.sum()), "se_total": se_total}
