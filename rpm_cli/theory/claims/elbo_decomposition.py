"""Claim 1 (Sec. 4.1-4.3): the RPM ELBO is the mutual information minus a KL divergence (Eq. 16-18), and the
general-Q ELBO of Eq. 12 reduces to it when Q is the recognition posterior of Eq. 14.

Computed twice: MI, and for each prior the ELBO and the KL, in closed form (traces and log-determinants) and by
Monte Carlo (log densities at simulated pairs); the general-Q ELBO likewise. Eq. 18 itself is bookkeeping: on one
set of samples MI - KL and the ELBO are the same numbers rearranged."""
import math

import numpy as np

from rpm_cli.theory import gaussian as G
from rpm_cli.theory import elbo_likelihood_slope as Mg
from rpm_cli.theory import montecarlo as MC
from rpm_cli.theory.checks import ClaimResult, bookkeeping, check, float_slack
from rpm_cli.theory.claims.setting import fmt
from rpm_cli.domains import integer
from rpm_cli.theory.keys import number

KEYS = {
    "elbo.samples": integer(1000, 4_000_000),
    "elbo.q_shift": number(0, 100, lo_open=False),
    "elbo.q_scale": number(0, 100),
}
TITLE = "1. ELBO = MI − KL (Eq. 16-18), and the general-Q ELBO (Eq. 12-14)"
SIDES = ("Monte Carlo: log densities at simulated (x, x', noise)", "closed form: traces and log-dets")


def priors(s):
    """The priors compared: P^InfoNCE with each critic (Eq. 21), and a fixed standard normal."""
    m = s.model
    closed = {"infonce_gaussian": G.infonce_prior(m, s.gauss), "infonce_linear": G.infonce_prior(m, s.linear),
              "fixed_standard": G.gaussian_prior(np.eye(2 * m.dz))}
    dens = MC.RecognitionDensities(m)
    sampled = {"infonce_gaussian": MC.infonce_log_prior(m, s.gauss, dens),
               "infonce_linear": MC.infonce_log_prior(m, s.linear, dens),
               "fixed_standard": MC.gaussian_log_prior(np.eye(2 * m.dz))}
    return closed, sampled


def mc_general_q_elbo(model, log_prior, shift, scale, n, rng):
    """Eq. 12 by sampling: z, z' ~ Q = N((Ax, A'x') + shift, (scale ε)² I) around simulated data, the integrand
    log P - log R(z) - log R(z') + log R_φ(z|x) R_φ(z'|x') - log Q evaluated pointwise."""
    dens = MC.RecognitionDensities(model)
    prim = MC.sample_primitives(model, n, rng)
    mean = np.concatenate(MC.encode(model, prim, eps=0.0), 1)
    w = mean + shift + scale * model.eps * rng.standard_normal(mean.shape)
    d = model.dz
    z, zp = w[:, :d], w[:, d:]
    enc = MC.gauss_logpdf(w, model.eps ** 2 * np.eye(2 * d), mean)
    q = MC.gauss_logpdf(w, (scale * model.eps) ** 2 * np.eye(2 * d), mean + shift)
    return MC.mean_se(log_prior(z, zp) - dens.log_rz(z) - dens.log_rzp(zp) + enc - q)


def run(s) -> ClaimResult:
    m, cfg = s.model, s.cfg["elbo"]
    closed, sampled = priors(s)
    mi = G.mutual_information(m)
    mc = MC.mc_terms(m, sampled, cfg["samples"], s.rng("elbo/terms"))
    q = {"mi": mi, "mi_data": G.mi_data(m.rho, m.dx), "mc_mi": mc["mi"], "priors": {}}
    checks = [check("mc_mi", "MI(z; z') of Eq. 5", "Eq. 5", mc["mi"][0], mi, 4 * mc["mi"][1], SIDES)]
    books = []
    for name, prior in closed.items():
        e, k = G.elbo(m, prior), G.kl(m, prior)
        (me, me_se), (mk, mk_se) = mc[f"elbo/{name}"], mc[f"kl/{name}"]
        q["priors"][name] = {"elbo": e, "kl": k, "mc_elbo": me, "mc_elbo_se": me_se, "mc_kl": mk, "mc_kl_se": mk_se}
        checks.append(check(f"mc_elbo[{name}]", f"ELBO (Eq. 16) under {name}", "Eq. 16", me, e, 4 * me_se, SIDES))
        checks.append(check(f"mc_kl[{name}]", f"KL(R ‖ P) (Eq. 18) for {name}", "Eq. 18", mk, k, 4 * mk_se, SIDES))
        books.append(bookkeeping(f"elbo_eq_mi_minus_kl[{name}]", "closed-form ELBO = MI − KL", "Eq. 18", e, mi - k,
                                 "the same Gaussian algebra rearranged (it does test that P's log constant "
                                 "matches its precision, i.e. that P is normalised)",
                                 tol=float_slack(e, mi, k, cond=np.linalg.cond(m.cov_joint))))
        books.append(bookkeeping(f"mc_elbo_eq_mi_minus_kl[{name}]", "MC ELBO = MC MI − MC KL", "Eq. 17-18", me,
                                 mc["mi"][0] - mk, "per sample log P − log R(z)R(z') = [log R(z,z') − log R(z)R(z')]"
                                 " − [log R(z,z') − log P] on one set of samples"))
    # Eq. 12 with Q ≠ R: a shifted, wider Gaussian around the codes
    shift = cfg["q_shift"] * m.eps * np.ones(2 * m.dz) / math.sqrt(2 * m.dz)
    prior = closed["infonce_gaussian"]
    gq = Mg.general_q_elbo(m, prior, shift, cfg["q_scale"])
    mgq = mc_general_q_elbo(m, sampled["infonce_gaussian"], shift, cfg["q_scale"], cfg["samples"] // 2,
                            s.rng("elbo/general_q"))
    q["general_q"] = {"shift_norm": cfg["q_shift"] * m.eps, "scale": cfg["q_scale"], "elbo": gq,
                      "mc_elbo": mgq[0], "mc_elbo_se": mgq[1]}
    checks.append(check("mc_general_q_elbo", "ELBO of Eq. 12 with Q = N(codes + shift, (scale·ε)² I), "
                        "P^InfoNCE (Gaussian critic)", "Eq. 12-13", mgq[0], gq, 4 * mgq[1], SIDES))
    books.append(bookkeeping("general_q_at_q_eq_r", "Eq. 12 with Q = R_φ(z|x)R_φ(z'|x') (Eq. 14) = Eq. 16",
                             "Eq. 14-16", Mg.general_q_elbo(m, prior, np.zeros(2 * m.dz), 1.0), G.elbo(m, prior),
                             "two closed forms of ours that share the prior's algebra"))
    pg = q["priors"]
    rows = "\n".join(f"| {n} | {fmt(p['elbo'])} | {fmt(p['mc_elbo'])} ± {fmt(p['mc_elbo_se'], 2)} | {fmt(p['kl'])} | "
                     f"{fmt(p['mc_kl'])} ± {fmt(p['mc_kl_se'], 2)} |" for n, p in pg.items())
    prose = (
        "Paper: \"The RPM ELBO can be written as the mutual information minus a KL divergence\" (Sec. 4.3, Eq. 18). "
        f"MI(z;z') = {fmt(mi)} in closed form, {fmt(mc['mi'][0])} ± {fmt(mc['mi'][1], 2)} by Monte Carlo "
        f"({cfg['samples']} simulated pairs); MI(x;x') = {fmt(q['mi_data'])}.\n\n"
        "| prior | ELBO (closed) | ELBO (MC) | KL (closed) | KL (MC) |\n|---|---|---|---|---|\n" + rows + "\n\n"
        "Computed twice: MI, each ELBO and each KL (closed form against Monte Carlo). Eq. 18 itself is bookkeeping "
        "(on common samples it is a rearrangement, so it cannot fail); what can fail is each term against its "
        "closed form. General Q (Eq. 12): with Q(z,z'|x,x') = N((Ax, A'x') + δ, (sε)²I), |δ| = "
        f"{fmt(q['general_q']['shift_norm'])}, s = {cfg['q_scale']:g}: ELBO {fmt(gq)} (closed) vs {fmt(mgq[0])} ± "
        f"{fmt(mgq[1], 2)} (MC), below the Q = R value {fmt(G.elbo(m, prior))} of Eq. 15-16.")
    return ClaimResult("elbo_decomposition", TITLE, q, checks, books, [], prose)
