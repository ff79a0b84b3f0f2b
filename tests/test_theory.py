"""The linear-Gaussian RPM theory lab: closed forms against brute-force quadrature (1-D), the Monte Carlo and
quadrature code paths against each other, config validation, and small end-to-end runs with unshared encoders
(the default) and with a shared encoder."""
import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from rpm_cli.errors import UserError
from rpm_cli.objectives import info_nce_estimate_full
from rpm_cli.theory import critics as CR
from rpm_cli.theory import gaussian as G
from rpm_cli.theory import elbo_likelihood_slope as Mg
from rpm_cli.theory import montecarlo as MC
from rpm_cli.theory import quadrature as QD
from rpm_cli.theory.lab import format_table, run_claims, run_theory, validate_theory
from rpm_cli.theory.mutations import reduced_config


def load_cfg():
    cfg = OmegaConf.load("configs/theory.yaml")
    del cfg["hydra"]
    return cfg


def model_1d(rho=0.7, eps=0.4, a=1.3, ap=0.8):
    return G.LinearGaussianRPM(rho, eps, np.array([[a]]), np.array([[ap]]))


CRITICS_1D = {"gaussian": G.GaussianCritic(0.9), "linear": G.LinearCritic(np.array([[0.35]])),
              "flexible": G.flexible_critic(model_1d())}


# ----------------------------------------------------------------------------------------- 1-D quadrature
def _quadrature(model, critic, n):
    """MI, I_∞, KL(R ‖ P^InfoNCE), the ELBO and ∫P by trapezoid integration on an n × n grid (z, z'), with
    Z(z) = ∫ R(z') f(z, z') dz' itself integrated on the same grid."""
    s = math.sqrt(max(model.cov_z[0, 0], model.cov_zp[0, 0]))
    u = np.linspace(-12 * s, 12 * s, n)
    h = u[1] - u[0]
    zz, zp = np.meshgrid(u, u, indexing="ij")
    S = model.cov_joint
    w = np.stack([zz, zp], -1)
    log_r = (-0.5 * np.einsum("...i,ij,...j->...", w, np.linalg.inv(S), w)
             - 0.5 * math.log((2 * math.pi) ** 2 * np.linalg.det(S)))
    log_rz = -0.5 * zz ** 2 / S[0, 0] - 0.5 * math.log(2 * math.pi * S[0, 0])
    log_rzp = -0.5 * zp ** 2 / S[1, 1] - 0.5 * math.log(2 * math.pi * S[1, 1])
    log_f = critic.log_f(w[..., :1], w[..., 1:])

    def integrate(v):
        return float(np.trapezoid(np.trapezoid(v, dx=h, axis=1), dx=h))

    log_z = np.log(np.trapezoid(np.exp(log_rzp + log_f), dx=h, axis=1))[:, None]
    log_p = log_rz + log_rzp + log_f - log_z
    r = np.exp(log_r)
    return {"mi": integrate(r * (log_r - log_rz - log_rzp)),
            "i_inf": integrate(r * log_f) - integrate(np.exp(log_rz + log_rzp) * log_z),
            "kl": integrate(r * (log_r - log_p)), "elbo": integrate(r * (log_p - log_rz - log_rzp)),
            "mass": integrate(np.exp(log_p))}


@pytest.mark.parametrize("name", sorted(CRITICS_1D))
def test_closed_forms_match_quadrature_in_1d_with_unshared_encoders(name):
    model, critic = model_1d(), CRITICS_1D[name]
    coarse, fine = _quadrature(model, critic, 301), _quadrature(model, critic, 601)
    prior = G.infonce_prior(model, critic)
    closed = {"mi": G.mutual_information(model), "i_inf": G.i_infinity(model, critic), "kl": G.kl(model, prior),
              "elbo": G.elbo(model, prior), "mass": 1.0}
    for key, value in closed.items():
        tol = 10 * abs(fine[key] - coarse[key]) + 1e-9
        assert abs(fine[key] - value) <= tol, (key, fine[key], value)
    if name == "flexible":
        assert closed["i_inf"] == pytest.approx(closed["mi"], abs=1e-12)   # the flexible critic is tight


def test_pair_likelihood_and_elbo_match_quadrature_in_1d():
    """log F(x, x') (Eq. 32) and the per-pair ELBO (Eq. 15) against trapezoid integration over (z, z')."""
    model, critic = model_1d(), G.GaussianCritic(0.9)
    x, xp = np.array([[0.4], [-1.1]]), np.array([[0.9], [-0.2]])
    c, M = G.critic_log_normaliser(critic, model.cov_zp)
    u = np.linspace(-10, 10, 2001)
    h = u[1] - u[0]
    for k in range(2):
        mz, mzp = model.A[0, 0] * x[k, 0], model.Ap[0, 0] * xp[k, 0]
        zz, zp = np.meshgrid(mz + model.eps * u, mzp + model.eps * u, indexing="ij")
        q = np.exp(-0.5 * ((zz - mz) ** 2 + (zp - mzp) ** 2) / model.eps ** 2) / (2 * math.pi * model.eps ** 2)
        log_ratio = critic.log_f(zz[..., None], zp[..., None]) - (c - 0.5 * M[0, 0] * zz ** 2)
        area = (model.eps * h) ** 2
        assert Mg.pair_log_likelihood(model, critic, x[k:k + 1], xp[k:k + 1])[0] == pytest.approx(
            math.log(np.sum(q * np.exp(log_ratio)) * area), abs=1e-8)
        assert Mg.pair_elbo(model, critic, x[k:k + 1], xp[k:k + 1])[0] == pytest.approx(
            np.sum(q * log_ratio) * area, abs=1e-8)


def test_the_three_normalisers_agree_where_they_overlap():
    """The general completion of the square reproduces the Gaussian (convolution) and linear (MGF) forms."""
    A, Ap = G.make_encoders(2, 3, 21, shared=False, offset=0.3)
    model = G.LinearGaussianRPM(0.8, 0.3, A, Ap)
    for critic in (G.GaussianCritic(0.7), G.LinearCritic(0.5 * CR.optimal_linear_W(model))):
        c, M = G.critic_log_normaliser(critic, model.cov_zp)
        c2, M2 = CR.quadratic_critic_log_normaliser(critic.Q(3), model.cov_zp)
        assert c == pytest.approx(c2, abs=1e-12) and np.allclose(M, M2, atol=1e-12)


def test_unshared_encoders_make_the_covariances_and_the_optimal_w_asymmetric():
    A, Ap = G.make_encoders(2, 3, 11, shared=False, offset=0.3)
    model = G.LinearGaussianRPM(0.8, 0.3, A, Ap)
    W = CR.optimal_linear_W(model)
    assert not np.allclose(model.cov_z, model.cov_zp)
    assert np.linalg.norm(W - W.T) > 0.05 * np.linalg.norm(W)


# ----------------------------------------------------------------------------------------- I_N
def test_info_nce_pinned_by_quadrature_at_n_1_and_2():
    """The Monte Carlo I_N (the lab's table code) against Gauss-Hermite quadrature, and the quadrature against
    itself at two orders; an N-vs-N+1 or log N slip moves I_1 or I_2 by ≥ 0.3 nats."""
    model = model_1d(rho=0.8, eps=0.3, a=1.0, ap=0.7)
    critic = G.GaussianCritic(G.argmax_theta(model))
    log_f = lambda z, zp: critic.log_f(z[..., None], zp[..., None])  # noqa: E731
    for N, orders in ((1, (24, 32)), (2, (12, 16))):
        quad = QD.i_n_quadrature_converged(0.8, 0.3, 1.0, 0.7, log_f, N, orders)
        assert quad["error"] < 1e-4
        mc = MC.mc_info_nce(model, critic, N, 200_000, 8, np.random.default_rng(20 + N))
        assert abs(mc["value"] - quad["value"]) <= 4 * mc["se"] + quad["error"], (N, mc, quad)
        assert 4 * mc["se"] < 0.02


def test_numpy_info_nce_rows_use_the_objectives_convention():
    rng = np.random.default_rng(21)
    for K in (2, 5, 30):
        lf = rng.standard_normal((K, K)) * 3
        ours = float(np.mean(MC.info_nce_rows(lf, np.diag(lf), K - 1)))
        assert ours == pytest.approx(info_nce_estimate_full(torch.from_numpy(lf)), abs=1e-12)
        assert ours <= math.log(K - 1) + 1e-12


def test_finite_n_slope_b_predicts_i_n_minus_i_inf_and_its_sign():
    A, Ap = G.make_encoders(2, 3, 11, shared=False, offset=0.3)
    model = G.LinearGaussianRPM(0.8, 0.3, A, Ap)
    theta_star = G.argmax_theta(model)
    best = G.GaussianCritic(theta_star)
    b = Mg.finite_n_slope(model, best)
    assert b < 0                                          # Eq. 7 holds to first order at the maximiser of I_∞
    r = MC.mc_info_nce(model, best, 256, 8192, 8, np.random.default_rng(22), control=True)
    assert abs(256 * r["minus_i_inf"] - b) < 0.1 * abs(b)
    narrow = G.GaussianCritic(0.5 * theta_star)          # b > 0: I_N exceeds I_∞, Eq. 7 fails
    assert Mg.finite_n_slope(model, narrow) > 0
    r = MC.mc_info_nce(model, narrow, 29, 65536, 8, np.random.default_rng(23), control=True)
    assert r["minus_i_inf"] > 4 * r["minus_i_inf_se"]


def test_rao_blackwellised_second_moment_matches_the_closed_form_where_the_fourth_moment_diverges():
    A, Ap = G.make_encoders(2, 3, 11, shared=False, offset=0.3)
    model = G.LinearGaussianRPM(0.8, 0.3, A, Ap)
    critic = G.GaussianCritic(G.argmax_theta(model))
    assert CR.ratio_moment_min_eig(model, critic, 4.0) < 0 < CR.ratio_moment_min_eig(model, critic, 2.0, outer=2.0)
    mom = MC.mc_ratio_moments(model, critic, 200_000, np.random.default_rng(24), rao_blackwell=True)
    (n2, se) = mom["negative_second_moment"]
    assert abs(n2 - Mg.negative_ratio_second_moment(model, critic)) < 4 * se < 0.01 * n2


def test_one_patch_of_partner_covariance_reaches_every_closed_form(monkeypatch):
    A, Ap = G.make_encoders(2, 3, 11, shared=False, offset=0.3)
    model = G.LinearGaussianRPM(0.8, 0.3, A, Ap)
    critic = G.GaussianCritic(0.7)
    before = (G.i_infinity(model, critic), Mg.finite_n_slope(model, critic), CR.second_moment_finite(model, critic)[1])
    monkeypatch.setattr(CR, "partner_covariance", lambda m: m.cov_z)
    after = (G.i_infinity(model, critic), Mg.finite_n_slope(model, critic), CR.second_moment_finite(model, critic)[1])
    assert all(a != b for a, b in zip(before, after))


# ----------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("key,value", [
    ("model.rho", 1.0), ("model.rho", 0), ("model.rho", "0.5"), ("model.rho", float("nan")),
    ("model.eps", 0.0), ("model.eps", -0.1), ("model.eps", float("inf")), ("model.dx", 0), ("model.dz", 10_000),
    ("model.dz", 2.5), ("model.dz", True), ("model.encoder_offset", -1.0), ("elbo.samples", 10 ** 9),
    ("info_nce.n_grid", [0, 1]), ("info_nce.n_grid", [1, 1.5]), ("info_nce.n_grid", [1, 100_000]),
    ("info_nce.train_n", 0), ("info_nce.eq7_n", []), ("learn.seeds", [10]), ("learn.lr", -1.0),
    ("eps_sweep.grid", [1.0, 0.0]), ("eps_sweep.fixed_prior", "uniform"), ("appc.pairs", 1),
    ("critic.theta", 0.0), ("seed", -1), ("plot.theta_range", [5.0, 0.2]),
    ("empirical.classifier_samples", 4096), ("optimal_prior.perturbations", [0.1]),
    ("free_posterior.pairs", 0), ("free_posterior.samples", 10), ("free_posterior.gap_samples", 1.5),
    ("free_posterior.random_q", 0), ("free_posterior.prior_perturbation", -1.0),
    ("free_posterior.eps_grid", [0.1]), ("free_posterior.eps_grid", [0.1, 0.1]),
    ("free_posterior.eps_grid", [1.0, 0.0]),
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


def test_default_config_is_unshared_and_avoids_the_reserved_seeds():
    c = validate_theory(OmegaConf.load("configs/theory.yaml"))   # the hydra key is skipped, never resolved
    assert c["model"]["shared_encoder"] is False and c["model"]["encoder_offset"] > 0
    seeds = [c["seed"], c["model"]["encoder_seed"], c["appc"]["data_seed"], *c["learn"]["seeds"]]
    assert not set(seeds) & set(range(1, 10)), seeds


# ----------------------------------------------------------------------------------------- end to end
def test_small_run_unshared_writes_everything_and_every_check_passes(tmp_path):
    res = run_theory(reduced_config(), tmp_path)
    assert not [c["name"] for c in res["checks"] if c["passed"] is False], format_table(res)
    assert sum(c["passed"] is True for c in res["checks"]) >= 30
    for name in ("theory.json", "THEORY.md", "info_nce_vs_n.png", "info_nce_vs_n.pdf", "kl_elbo_vs_eps.png",
                 "i_inf_theta.png", "appc_elbo_logp.pdf", "optimal_prior_perturbation.png", "free_posterior_gap.png"):
        assert (tmp_path / name).is_file(), name
    data = json.loads((tmp_path / "theory.json").read_text())
    assert len(data["checks"]) == len(res["checks"])
    assert all(c["kind"] == "check" and c["lhs_from"] != c["rhs_from"] for c in data["checks"] if c["passed"])
    assert data["bookkeeping"] and all(b["kind"] == "bookkeeping" for b in data["bookkeeping"])
    # Eq. 7: holds at θ*, refuted where b > 0, and the refutations are verdicts, never counted checks
    status = {(v["name"].split(",")[0], v["status"]) for v in data["verdicts"] if v["name"].startswith("eq7[")}
    assert status == {("eq7[configured", "holds"), ("eq7[counterexample", "refuted")}
    assert {v["name"] for v in data["verdicts"]} >= {"i_n_le_mi[N=29]", "eq7_sign_follows_b"}
    names = {c["name"] for c in data["checks"]}
    assert {"mc_normaliser_at_anchors[linear]", "linear_w_star_drop[+δE]"} <= names
    assert not names & {"p_star_maximises_elbo", "eq7_sign_follows_b", "i_n_le_mi[N=29]"}
    md = (tmp_path / "THEORY.md").read_text()
    assert "![I_N vs N](info_nce_vs_n.png)" in md and "Computed twice" in md and "standard deviation" in md


def test_shared_encoder_configuration_also_passes_and_runs_are_deterministic():
    cfg = reduced_config()
    OmegaConf.update(cfg, "model.shared_encoder", True)
    c = validate_theory(cfg)
    _, first, _ = run_claims(c)
    _, second, _ = run_claims(c)
    checks = [x for r in first for x in r.checks]
    assert not [x["name"] for x in checks if x["passed"] is False]
    assert [x["lhs"] for x in checks] == [x["lhs"] for r in second for x in r.checks]


def test_rpm_theory_exits_1_after_writing_the_table_when_a_counted_check_fails(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        import rpm_cli.theory.lab as L
        def fake(cfg, out):
            rec = {{"kind": "check", "name": "fake_check", "passed": False, "lhs": 1.0, "rhs": 0.0, "rel": "=",
                    "diff": 1.0, "tol": 0.1, "margin_over_scale": 1.1, "tol_over_scale": 0.1}}
            return {{"checks": [rec], "bookkeeping": [], "verdicts": [], "files": []}}
        L.run_theory = fake
        from rpm_cli.cli import main
        sys.argv = ["rpm", "theory", "hydra.run.dir={tmp_path}"]
        main()
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert "fake_check" in r.stdout and "FAIL" in r.stdout and "Exit status 1" in r.stdout
    assert "1 counted check(s) failed: fake_check" in r.stderr
