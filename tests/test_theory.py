"""The linear-Gaussian RPM theory lab: closed forms against brute-force quadrature (1-D) and Monte Carlo, a broken
normaliser caught, config validation, and a small end-to-end run."""
import json
import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from rpm_cli.errors import UserError
from rpm_cli.objectives import info_nce_estimate_full
from rpm_cli.theory import gaussian as G
from rpm_cli.theory import lab as L
from rpm_cli.theory import montecarlo as MC
from rpm_cli.theory.lab import format_table, run_theory, validate_theory


def load_cfg():
    cfg = OmegaConf.load("configs/theory.yaml")
    del cfg["hydra"]
    return cfg


def small_cfg(**overrides):
    """The default config shrunk so a full run takes a few seconds."""
    cfg = load_cfg()
    small = {
        "model.dx": 1, "model.dz": 2, "mc.samples": 20000, "mc.nested_anchors": 2048, "mc.nested_inner": 256,
        "mc.nested_groups": 8, "info_nce.n_grid": [1, 2, 4, 8, 64, 512], "info_nce.rows": 2048,
        "info_nce.min_batches": 8, "learn.steps": 150, "learn.seeds": [0, 1, 2], "learn.lr": 0.05,
        "learn.finite_n_batches": 300,
        "eps_sweep.grid": [1.0, 0.3, 0.1, 0.01, 0.005], "eps_sweep.mc_samples": 2000, "appc.pairs": 12,
        "appc.eps_grid": [0.5, 0.1, 0.01, 0.002], "appc.samples": 256, "appc.classifier_samples": 32,
        "plot.theta_points": 30,
    }
    small.update(overrides)
    for k, v in small.items():
        OmegaConf.update(cfg, k, v)
    return cfg


def model_1d(rho=0.7, eps=0.4, a=1.3, ap=None):
    A = np.array([[a]])
    return G.LinearGaussianRPM(rho, eps, A, np.array([[ap if ap is not None else a]]))


# ----------------------------------------------------------------------------------------- 1-D quadrature
def _grid(model, n):
    s = math.sqrt(max(model.cov_z[0, 0], model.cov_zp[0, 0]))
    u = np.linspace(-12 * s, 12 * s, n)
    return u, u[1] - u[0]


def _quadrature(model, critic, n):
    """MI, I_∞, KL(R ‖ P^InfoNCE) and the ELBO by brute-force trapezoid integration on an n × n grid (z, z'), with
    Z(z) = ∫ R(z') f(z, z') dz' itself integrated numerically on the same grid."""
    u, h = _grid(model, n)
    zz, zp = np.meshgrid(u, u, indexing="ij")
    S = model.cov_joint
    Si = np.linalg.inv(S)
    w = np.stack([zz, zp], -1)
    log_r = -0.5 * np.einsum("...i,ij,...j->...", w, Si, w) - 0.5 * math.log((2 * math.pi) ** 2 * np.linalg.det(S))
    log_rz = -0.5 * zz ** 2 / S[0, 0] - 0.5 * math.log(2 * math.pi * S[0, 0])
    log_rzp = -0.5 * zp ** 2 / S[1, 1] - 0.5 * math.log(2 * math.pi * S[1, 1])
    log_f = critic.log_f(w[..., :1], w[..., 1:])
    r, rz_rzp = np.exp(log_r), np.exp(log_rz + log_rzp)

    def integrate(v):
        return float(np.trapezoid(np.trapezoid(v, dx=h, axis=1), dx=h))

    log_z = np.log(np.trapezoid(rz_rzp / np.exp(log_rz) * np.exp(log_f), dx=h, axis=1))[:, None]  # ∫R(z')f dz'
    log_p = log_rz + log_rzp + log_f - log_z
    return {"mi": integrate(r * (log_r - log_rz - log_rzp)),
            "i_inf": integrate(r * log_f) - integrate(np.exp(log_rz) * log_z * np.exp(log_rzp)),
            "kl": integrate(r * (log_r - log_p)), "elbo": integrate(r * (log_p - log_rz - log_rzp)),
            "mass": integrate(np.exp(log_p))}


@pytest.mark.parametrize("critic", [G.GaussianCritic(0.9), G.LinearCritic(np.array([[0.35]]))],
                         ids=["gaussian", "linear"])
def test_closed_forms_match_quadrature_in_1d(critic):
    model = model_1d()
    coarse, fine = _quadrature(model, critic, 301), _quadrature(model, critic, 601)
    prior = G.infonce_prior(model, critic)
    closed = {"mi": G.mutual_information(model), "i_inf": G.i_infinity(model, critic), "kl": G.kl(model, prior),
              "elbo": G.elbo(model, prior), "mass": 1.0}
    for key, value in closed.items():
        tol = 10 * abs(fine[key] - coarse[key]) + 1e-9  # the quadrature's own convergence + float summation
        assert abs(fine[key] - value) <= tol, (key, fine[key], value)


def test_mi_of_injective_encoders_tends_to_mi_of_data():
    model = model_1d(eps=1e-4)
    assert G.mutual_information_eps0(model) == pytest.approx(G.mi_data(0.7, 1), abs=1e-12)
    assert abs(G.mutual_information(model) - G.mi_data(0.7, 1)) < 1e-6


# ----------------------------------------------------------------------------------------- Monte Carlo
def test_monte_carlo_agrees_with_closed_form_within_four_standard_errors():
    A, Ap = G.make_encoders(1, 2, 3, shared=True)
    model = G.LinearGaussianRPM(0.8, 0.3, A, Ap)
    critic = G.GaussianCritic(G.argmax_theta(model))
    prior = G.infonce_prior(model, critic)
    rng = np.random.default_rng(0)
    n = 40000
    mi = MC.mc_mutual_information(model, n, rng)
    elbo = MC.mc_elbo(model, MC.infonce_log_prior(model, critic), n, rng)
    kl = MC.mc_kl(model, MC.infonce_log_prior(model, critic), n, rng)
    mass = MC.mc_prior_mass(model, critic, n, rng)
    for (est, se), exact in ((mi, G.mutual_information(model)), (elbo, G.elbo(model, prior)),
                             (kl, G.kl(model, prior)), (mass, 1.0)):
        assert se > 0
        assert abs(est - exact) <= 4 * se, (est, se, exact)
    # ELBO = MI - KL across independent streams (Eq. 18)
    assert abs(elbo[0] - (mi[0] - kl[0])) <= 4 * math.sqrt(mi[1] ** 2 + elbo[1] ** 2 + kl[1] ** 2)


def test_numpy_info_nce_uses_the_objectives_convention():
    rng = np.random.default_rng(1)
    for K in (2, 5, 30):
        lf = rng.standard_normal((K, K)) * 3
        ours = MC.info_nce_np(lf)
        assert ours == pytest.approx(info_nce_estimate_full(torch.from_numpy(lf)), abs=1e-12)
        assert ours <= math.log(K - 1) + 1e-12  # I_N ≤ log N, N = K - 1


def test_info_nce_is_below_log_n_and_near_i_inf_at_large_n():
    A, Ap = G.make_encoders(1, 2, 3, shared=True)
    model = G.LinearGaussianRPM(0.8, 0.3, A, Ap)
    critic = G.GaussianCritic(G.argmax_theta(model))
    i_inf = G.i_infinity(model, critic)
    big = MC.mc_info_nce(model, critic, 1024, 8192, 8, np.random.default_rng(2), with_bias=True)
    small = MC.mc_info_nce(model, critic, 1, 4096, 8, np.random.default_rng(3))
    assert big["max_minus_log_n"] <= 1e-12 and small["max_minus_log_n"] <= 1e-12
    assert abs(big["value"] - i_inf) <= 4 * big["se"] + abs(big["bias_1st_order"])
    assert small["value"] < i_inf


# ----------------------------------------------------------------------------------------- broken normaliser
def _broken(kind):
    good = G.gaussian_critic_log_normaliser

    def broken(theta, cov_zp):
        c, M = good(theta, cov_zp)
        return {"sign_of_quadratic": (c, -M), "twice_the_quadratic": (c, 2 * M), "twice_the_constant": (2 * c, M),
                "sign_of_constant": (-c, M), "theta_not_squared": good(math.sqrt(theta), cov_zp)}[kind]
    return broken


def _identity_check(model, critic):
    _, checks = L.closed_form_checks(model, critic, G.LinearCritic(G.optimal_linear_W(model)),
                                     np.eye(2 * model.dz))
    return next(c for c in checks if c["name"] == "elbo_eq_mi_minus_kl[infonce_gaussian]")


@pytest.mark.parametrize("kind", ["sign_of_quadratic", "twice_the_quadratic", "twice_the_constant",
                                  "sign_of_constant", "theta_not_squared"])
def test_a_broken_gaussian_normaliser_fails_the_identity_check(monkeypatch, kind):
    A, Ap = G.make_encoders(2, 3, 1, shared=True)
    model = G.LinearGaussianRPM(0.8, 0.3, A, Ap)
    critic = G.GaussianCritic(0.8)
    assert _identity_check(model, critic)["passed"] is True
    monkeypatch.setattr(G, "gaussian_critic_log_normaliser", _broken(kind))
    check = _identity_check(model, critic)
    assert check["passed"] is False, check
    assert check["diff"] > 1e3 * check["tol"]
    # and the sampled normalisation of P^InfoNCE notices too (independent of the closed-form expectations)
    mass, se = MC.mc_prior_mass(model, critic, 20000, np.random.default_rng(0))
    assert abs(mass - 1.0) > 4 * se


def test_a_broken_normaliser_fails_the_nested_monte_carlo_check(monkeypatch):
    A, Ap = G.make_encoders(2, 3, 1, shared=True)
    model = G.LinearGaussianRPM(0.8, 0.3, A, Ap)
    critic = G.GaussianCritic(0.8)
    nested = MC.mc_i_infinity_nested(model, critic, 2048, 512, 8, np.random.default_rng(0))
    tol = 4 * nested["se"] + abs(nested["bias"])
    assert abs(nested["value"] - G.i_infinity(model, critic)) <= tol
    monkeypatch.setattr(G, "gaussian_critic_log_normaliser", _broken("twice_the_constant"))
    assert abs(nested["value"] - G.i_infinity(model, critic)) > tol


# ----------------------------------------------------------------------------------------- appendices
def test_fixed_prior_kl_diverges_at_the_predicted_rate_and_infonce_kl_converges():
    A, Ap = G.make_encoders(2, 3, 1, shared=True)
    model = G.LinearGaussianRPM(0.8, 0.3, A, Ap)
    critic = G.GaussianCritic(0.8)
    cov_f = model.with_eps(1.0).cov_joint
    prior = G.gaussian_prior(cov_f)
    e1, e2 = 1e-3, 2e-3
    slope = (G.kl(model.with_eps(e1), prior) - G.kl(model.with_eps(e2), prior)) / math.log(e2 / e1)
    assert G.fixed_prior_kl_slope(model) == 2 * 3 - 4
    assert abs(slope - 2) <= G.fixed_prior_slope_bound(model, cov_f, e2) + 1e-6
    k = G.kl(model.with_eps(e1), G.infonce_prior(model.with_eps(e1), critic))
    assert abs(k - G.infonce_kl_eps0(model, critic)) <= G.infonce_kl_eps_bound(model, critic, e1) + 1e-6


def test_empirical_rpm_pair_probabilities_and_classifier():
    A, Ap = G.make_encoders(2, 3, 1, shared=True)
    model = G.LinearGaussianRPM(0.8, 0.3, A, Ap)
    g, gp = MC.make_dataset(model, 10, np.random.default_rng(0))
    P0 = G.deterministic_pair_probabilities(g, gp, 0.8)
    assert P0.sum() == pytest.approx(1.0, abs=1e-12)
    log_f = G.GaussianCritic(0.8).log_f_matrix(g, gp)
    cond = P0 / P0.sum(1, keepdims=True)
    from rpm_cli.objectives import info_nce

    assert -np.mean(np.log(np.diag(cond))) == pytest.approx(float(info_nce(torch.from_numpy(log_f))), abs=1e-12)
    pp = MC.empirical_pair_probabilities(g, gp, 0.3, 0.8, 64, np.random.default_rng(1))
    assert abs(pp["total"] - 1.0) <= 4 * pp["se_total"]


def test_elbo_below_log_marginal_and_meets_eq51():
    A, Ap = G.make_encoders(2, 3, 1, shared=True)
    model = G.LinearGaussianRPM(0.8, 0.3, A, Ap)
    g, gp = MC.make_dataset(model, 8, np.random.default_rng(0))
    big = (MC.empirical_elbo(g, gp, 0.5, 0.8, 512, np.random.default_rng(1)),
           MC.empirical_log_marginal(g, gp, 0.5, 0.8, 512, np.random.default_rng(2)))
    assert big[1]["value"] - big[0]["value"] > 4 * math.hypot(big[0]["se"], big[1]["se"])  # a visible gap
    eps = 1e-3
    e = MC.empirical_elbo(g, gp, eps, 0.8, 512, np.random.default_rng(3))
    det = G.deterministic_elbo(g, gp, 0.8)
    assert abs(e["value"] - det) <= 4 * e["se"] + G.empirical_smoothing_bound(gp, 0.8, eps, 3)


# ----------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("key,value", [
    ("model.rho", 1.0), ("model.rho", 0), ("model.rho", "0.5"), ("model.rho", float("nan")),
    ("model.eps", 0.0), ("model.eps", -0.1), ("model.eps", float("inf")), ("model.dx", 0), ("model.dz", 10_000),
    ("model.dz", 2.5), ("model.dz", True), ("mc.samples", 10 ** 9), ("info_nce.n_grid", [0, 1]),
    ("info_nce.n_grid", [1, 1.5]), ("info_nce.n_grid", [1, 100_000]), ("info_nce.train_n", 0),
    ("learn.seeds", [0]), ("learn.lr", -1.0), ("eps_sweep.grid", [1.0, 0.0]),
    ("eps_sweep.fixed_prior", "uniform"), ("appc.pairs", 1), ("critic.theta", 0.0), ("seed", -1),
    ("plot.theta_range", [5.0, 0.2]), ("appc.classifier_samples", 4096),
])
def test_bad_values_raise_one_line_user_errors_naming_the_key(key, value):
    cfg = load_cfg()
    OmegaConf.update(cfg, key, value)
    with pytest.raises(UserError) as exc:
        validate_theory(cfg)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(key.split(".")[0]) and key.split(".")[-1] in msg


def test_unknown_key_is_rejected():
    cfg = load_cfg()
    OmegaConf.update(cfg, "model.nosuch", 1, force_add=True)
    with pytest.raises(UserError, match="model.nosuch"):
        validate_theory(cfg)


def test_default_config_is_valid_and_hydra_key_is_ignored():
    cfg = OmegaConf.load("configs/theory.yaml")
    validate_theory(cfg)  # the hydra key (with ${now:...}) is skipped, never resolved


# ----------------------------------------------------------------------------------------- end to end
def test_small_run_writes_everything_and_every_check_passes(tmp_path):
    res = run_theory(small_cfg(), tmp_path)
    table = format_table(res)
    failed = [c["name"] for c in res["checks"] if c["passed"] is False]
    assert not failed, table
    for name in ("theory.json", "THEORY.md", "info_nce_vs_n.png", "info_nce_vs_n.pdf", "kl_elbo_vs_eps.png",
                 "i_inf_theta.png", "appc_elbo_logp.pdf"):
        assert (tmp_path / name).is_file(), name
    assert {str(tmp_path / "theory.json"), str(tmp_path / "THEORY.md")} <= set(res["files"])
    data = json.loads((tmp_path / "theory.json").read_text())
    assert len(data["checks"]) == len(res["checks"])
    for c in data["checks"]:
        assert set(c) >= {"name", "claim", "lhs", "rhs", "diff", "tol", "passed"}
    md = (tmp_path / "THEORY.md").read_text()
    assert "![I_N vs N](info_nce_vs_n.png)" in md and "Eq. 6 as written" in md
    # deterministic given the seeds
    again = run_theory(small_cfg(), tmp_path / "again")
    assert [c["lhs"] for c in again["checks"]] == [c["lhs"] for c in res["checks"]]
