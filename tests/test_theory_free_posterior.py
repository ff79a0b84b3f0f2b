"""Claim 9's closed forms (rpm_cli/theory/posterior.py) against hand computations: the Gaussian KL in one
dimension, the InfoNCE log ratio of a 1-D model written out by hand, log P(x, x'), the exact posterior and the ELBO
of a full-covariance Q by brute-force quadrature over (z, z') with every density written here, the ε → 0 limits of
the Eq. 14 gap for a model with one unreached latent direction, the Monte Carlo integrand at the exact posterior,
and the claim itself at the reduced config."""
import math

import numpy as np
import pytest

from rpm_cli.theory import gaussian as G
from rpm_cli.theory import montecarlo as MC
from rpm_cli.theory import posterior as P
from rpm_cli.theory.claims import free_posterior, setting
from rpm_cli.theory.lab import validate_theory
from rpm_cli.theory.mutations import reduced_config

A, AP, RHO, THETA = 1.3, 0.8, 0.7, 0.9


def model_1d(eps):
    return G.LinearGaussianRPM(RHO, eps, np.array([[A]]), np.array([[AP]]))


def log_normal(u, var):
    return -0.5 * u ** 2 / var - 0.5 * math.log(2 * math.pi * var)


def test_gaussian_kl_matches_the_one_dimensional_formula_and_adds_over_independent_coordinates():
    m1, s1, m2, s2 = 0.3, 0.7, -0.4, 1.6
    by_hand = math.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5
    assert P.gaussian_kl(np.array([m1]), np.array([[s1 ** 2]]), np.array([m2]), np.array([[s2 ** 2]])) == \
        pytest.approx(by_hand, abs=1e-14)
    two = P.gaussian_kl(np.array([m1, m2]), np.diag([s1 ** 2, s2 ** 2]),
                        np.array([m2, m1]), np.diag([s2 ** 2, s1 ** 2]))
    swapped = math.log(s1 / s2) + (s2 ** 2 + (m2 - m1) ** 2) / (2 * s1 ** 2) - 0.5
    assert two == pytest.approx(by_hand + swapped, abs=1e-14)


def test_the_infonce_log_ratio_is_log_f_minus_log_z_written_out_in_1d():
    """h = log f − log Z: log f = −(z − z')²/(2θ²) and Z(z) = √(θ²/(θ² + σ'²)) exp(−z²/(2(θ² + σ'²))), so
    K = [[1/θ² − 1/(θ² + σ'²), −1/θ²], [−1/θ², 1/θ²]] and c_h = ½ log(1 + σ'²/θ²)."""
    model = model_1d(0.4)
    s2p = AP ** 2 + 0.4 ** 2
    c, K = P.log_ratio_form(model, G.infonce_prior(model, G.GaussianCritic(THETA)))
    t2 = THETA ** 2
    assert np.allclose(K, [[1 / t2 - 1 / (t2 + s2p), -1 / t2], [-1 / t2, 1 / t2]], atol=1e-12)
    assert c == pytest.approx(0.5 * math.log(1 + s2p / t2), abs=1e-12)


def _quadrature(eps, log_prior, x, xp, q_mean, q_cov, n=801, half=7.0):
    """log F, the exact posterior's mean and covariance, and the ELBO of Q = N(q_mean, q_cov), by the trapezoid rule
    on an n × n grid over (z, z') around the codes, every density written here."""
    m = np.array([A * x, AP * xp])
    u = np.linspace(-half, half, n)
    h = u[1] - u[0]
    z, zp = np.meshgrid(m[0] + u, m[1] + u, indexing="ij")
    log_ratio = log_prior(z, zp) - log_normal(z, A ** 2 + eps ** 2) - log_normal(zp, AP ** 2 + eps ** 2)
    log_enc = log_normal(z - m[0], eps ** 2) + log_normal(zp - m[1], eps ** 2)
    weight = np.exp(log_enc + log_ratio)
    F = weight.sum() * h * h
    mean = np.array([(weight * z).sum(), (weight * zp).sum()]) * h * h / F
    dz, dzp = z - mean[0], zp - mean[1]
    cov = np.array([[(weight * dz * dz).sum(), (weight * dz * dzp).sum()],
                    [(weight * dz * dzp).sum(), (weight * dzp * dzp).sum()]]) * h * h / F
    (p, r), (_, s) = q_cov
    det = p * s - r * r
    a, b = z - q_mean[0], zp - q_mean[1]
    log_q = -0.5 * (s * a * a - 2 * r * a * b + p * b * b) / det - 0.5 * math.log((2 * math.pi) ** 2 * det)
    elbo = (np.exp(log_q) * (log_enc + log_ratio - log_q)).sum() * h * h
    return math.log(F), mean, cov, elbo


@pytest.mark.parametrize("prior_name", ["fixed", "infonce"])
def test_log_p_the_exact_posterior_and_a_full_covariance_elbo_match_quadrature_in_1d(prior_name):
    eps, x, xp = 0.5, 0.6, -0.3
    model = model_1d(eps)
    if prior_name == "fixed":
        (p, r), (_, s) = cov_f = np.array([[1.5, 0.6], [0.6, 1.1]])
        det = p * s - r * r
        prior = G.gaussian_prior(cov_f)

        def log_prior(z, zp):
            return -0.5 * (s * z * z - 2 * r * z * zp + p * zp * zp) / det - 0.5 * math.log((2 * math.pi) ** 2 * det)
    else:
        prior = G.infonce_prior(model, G.GaussianCritic(THETA))
        s2, s2p, t2 = A ** 2 + eps ** 2, AP ** 2 + eps ** 2, THETA ** 2

        def log_prior(z, zp):
            log_z = 0.5 * math.log(t2 / (t2 + s2p)) - 0.5 * z * z / (t2 + s2p)
            return log_normal(z, s2) + log_normal(zp, s2p) - 0.5 * (z - zp) ** 2 / t2 - log_z
    m = P.codes(model, np.array([[x]]), np.array([[xp]]))[0]
    q_mean, q_cov = m + np.array([0.2, -0.15]), np.array([[0.2, 0.07], [0.07, 0.3]])
    log_f, mean, cov, elbo = _quadrature(eps, log_prior, x, xp, q_mean, q_cov)
    star_mean, star_cov = P.exact_posterior(model, prior, m)
    assert P.log_likelihood(model, prior, m) == pytest.approx(log_f, abs=1e-9)
    assert np.allclose(star_mean, mean, atol=1e-9) and np.allclose(star_cov, cov, atol=1e-9)
    assert P.elbo(model, prior, m, q_mean, q_cov) == pytest.approx(elbo, abs=1e-8)
    assert P.elbo(model, prior, m, star_mean, star_cov) == pytest.approx(log_f, abs=1e-9)
    assert elbo < log_f - 0.01                                   # a Q off the posterior is strictly below


def test_fixed_prior_gap_limit_by_hand_with_one_unreached_direction_per_encoder():
    """dx = 1, dz = 2, A = (1, 0)ᵀ, A' = (0.5, 0)ᵀ: z₂ and z'₂ are never reached (k = 2). With Σ_f = [[1, c],
    [c, 1]] ⊕ I, the prior's conditional of z₂ given z₁ = m₁ is N(c m₁, 1 − c²) and that of z'₂ is N(0, 1), so
    gap → KL(N(0, ε²) ‖ N(c m₁, 1 − c²)) + KL(N(0, ε²) ‖ N(0, 1)) = 2 log(1/ε) + C₀ with
    C₀ = ½ [log(1 − c²) − 1 + c² m₁²/(1 − c²)] − ½."""
    c = 0.6
    cov_f = np.eye(4)
    cov_f[0, 1] = cov_f[1, 0] = c
    x, xp = np.array([[0.9], [-0.4]]), np.array([[0.5], [0.2]])
    model = G.LinearGaussianRPM(0.7, 1e-3, np.array([[1.0], [0.0]]), np.array([[0.5], [0.0]]))
    m = P.codes(model, x, xp)
    k, c0 = P.fixed_prior_gap_limit(model, cov_f, m)
    by_hand = 0.5 * (math.log(1 - c * c) - 1 + c * c * m[:, 0] ** 2 / (1 - c * c)) - 0.5
    assert k == 2 and np.allclose(c0, by_hand, atol=1e-12)
    prior = G.gaussian_prior(cov_f)
    for eps in (1e-2, 1e-3):
        me = model.with_eps(eps)
        gaps = [P.gaussian_kl(mi, P.encoder_cov(me), *P.exact_posterior(me, prior, mi)) for mi in m]
        assert np.allclose(np.array(gaps) - 2 * math.log(1 / eps), by_hand, atol=10 * eps ** 2)


def test_infonce_gap_over_eps_squared_tends_to_half_the_squared_gradient_by_hand_in_1d():
    """K₀ = [[1/θ² − 1/(θ² + a'²), −1/θ²], [−1/θ², 1/θ²]] at ε = 0; gap/ε² → ½|K₀m|²."""
    t2, x, xp = THETA ** 2, 0.6, -0.3
    m = np.array([A * x, AP * xp])
    K0 = np.array([[1 / t2 - 1 / (t2 + AP ** 2), -1 / t2], [-1 / t2, 1 / t2]])
    rate = 0.5 * float(np.sum((K0 @ m) ** 2))
    for eps in (1e-2, 1e-3):
        model = model_1d(eps)
        prior = G.infonce_prior(model, G.GaussianCritic(THETA))
        gap = P.gaussian_kl(m, P.encoder_cov(model), *P.exact_posterior(model, prior, m))
        assert gap / eps ** 2 == pytest.approx(rate, rel=20 * eps ** 2)


def test_monte_carlo_integrand_is_log_p_at_every_draw_from_the_exact_posterior_and_matches_a_random_q():
    A2, Ap2 = G.make_encoders(1, 2, 21, shared=False, offset=0.5)
    model = G.LinearGaussianRPM(0.8, 0.3, A2, Ap2)
    rng = np.random.default_rng(31)
    x = rng.standard_normal((2, 1))
    xp = 0.8 * x + 0.6 * rng.standard_normal((2, 1))
    m = P.codes(model, x, xp)
    critic = G.GaussianCritic(0.8)
    prior, log_prior = G.infonce_prior(model, critic), MC.infonce_log_prior(model, critic)
    post = [P.exact_posterior(model, prior, mi) for mi in m]
    log_p = np.array([P.log_likelihood(model, prior, mi) for mi in m])
    star = MC.mc_gaussian_q_elbo(model, log_prior, x, xp, np.array([p[0] for p in post]),
                                 np.array([p[1] for p in post]), 64, rng)
    assert np.max(np.abs(star["values"] - log_p[:, None])) < 1e-10
    means = m + 0.3 * rng.standard_normal(m.shape)
    b = rng.standard_normal((2, 4, 4))
    covs = 0.09 * (b @ b.transpose(0, 2, 1) / 4 + 0.5 * np.eye(4))
    mc = MC.mc_gaussian_q_elbo(model, log_prior, x, xp, means, covs, 20_000, rng)
    closed = np.mean([P.elbo(model, prior, mi, mu, S) for mi, mu, S in zip(m, means, covs)])
    assert abs(mc["value"] - closed) < 4 * mc["se"] < 0.05
    assert closed < log_p.mean()


def test_the_claim_passes_at_the_reduced_config_with_its_named_checks():
    s = setting.build(validate_theory(reduced_config()))
    r = free_posterior.run(s)
    assert not [c["name"] for c in r.checks if not c["passed"]]
    names = {c["name"] for c in r.checks}
    for prior in ("infonce", "fixed"):
        assert {f"free_q_slack[{prior}]", f"posterior_elbo_is_log_p[{prior}]", f"eq14_gap[{prior}]",
                f"gap_limit[{prior}]", f"free_q_elbo[{prior},Q=1]"} <= names
    assert all(v["status"] == "holds" for v in r.verdicts) and len(r.verdicts) == 2
    assert r.quantities["priors"]["fixed"]["k"] == 2 * s.model.dz - 2 * s.model.dx
    assert all(c["lhs_from"] != c["rhs_from"] for c in r.checks)
