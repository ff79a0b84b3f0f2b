"""Claim 8 (App. A.1-A.2, Eq. 31-37): P(x, x') = R_base(x) R_base(x') F(x, x'); with empirical marginals it is a
mass P(i, j) = F(x_i, x'_j)/M² over index pairs (Eq. 34) whose conditional P(j|i) is the InfoNCE classifier; and
the empirical mixture (1/M) Σ_i R(z|x_i) of Eq. 29/37 is the sample estimate of the true marginal R(z) (Eq. 35-36).

Computed twice: Σ_ij P(i, j) = 1 by importance sampling of F at ε > 0 (Eq. 34; the weight reduces to f/Z/M², so
this tests the mixture normaliser Z(z) of Eq. 29b against sampling z' from the mixture); ∫ P(x, x') = 1 for the true
marginals, the closed-form F averaged over independently simulated x, x' (Eq. 31); the mixture density against
the closed-form R(z) at simulated test points (Eq. 35-37). At ε = 0, Σ P = 1 and "P(j|i) is the InfoNCE
classifier" hold by construction (a row softmax of one matrix): bookkeeping."""
import numpy as np

from rpm_cli.theory import empirical as EM
from rpm_cli.theory import limits as LM
from rpm_cli.theory import elbo_likelihood_slope as Mg
from rpm_cli.theory.checks import ClaimResult, bookkeeping, check
from rpm_cli.theory.claims.likelihood_bound import data
from rpm_cli.theory.claims.setting import fmt
from rpm_cli.domains import integer, optional
from rpm_cli.theory.keys import number

TITLE = "8. P(i, j) ∝ F(x_i, x'_j) is the InfoNCE classifier; the mixture marginal (App. A.1-A.2, Eq. 31-37)"
KEYS = {
    "empirical.classifier_eps": optional(number(0, 100)),
    "empirical.classifier_samples": integer(2, 4096),
    "empirical.mixture_components": integer(100, 1_000_000),
    "empirical.mixture_points": integer(2, 4096),
    "empirical.mixture_groups": integer(2, 1024),
    "empirical.normalisation_samples": integer(1000, 4_000_000),
}


def run(s) -> ClaimResult:
    import torch

    from rpm_cli.objectives import info_nce

    m, cfg = s.model, s.cfg["empirical"]
    theta = s.gauss_at(s.cfg["appc"]["theta"]).theta
    x, xp = data(s)
    g, gp = x @ m.A.T, xp @ m.Ap.T
    M = g.shape[0]
    checks, books = [], []
    # Eq. 34 at ε = 0: exact, a row softmax of the log f matrix
    P0 = LM.deterministic_pair_probabilities(g, gp, theta)
    cond0 = P0 / P0.sum(1, keepdims=True)
    log_f = s.gauss_at(theta).log_f_matrix(g, gp)
    ce0, loss0 = float(-np.mean(np.log(np.diag(cond0)))), float(info_nce(torch.from_numpy(log_f)))
    books.append(bookkeeping("pij_sums_to_one[eps=0]", "Σ_ij P(i, j) = 1 with deterministic encoders", "Eq. 34",
                             P0.sum(), 1.0, "each row of F/M² is a softmax divided by M", tol=1e-12 * M * M))
    books.append(bookkeeping("pij_is_infonce[eps=0]", "−E_i log P(j=i|i) = the full-batch InfoNCE loss", "Eq. 34",
                             ce0, loss0, "two cross-entropies of one matrix"))
    # Eq. 34 at ε > 0: importance sampling
    eps_c = float(cfg["classifier_eps"]) if cfg["classifier_eps"] is not None else m.eps
    pp = EM.empirical_pair_probabilities(g, gp, eps_c, theta, cfg["classifier_samples"], s.rng("empirical/pairs"))
    condc = pp["P"] / pp["P"].sum(1, keepdims=True)
    checks.append(check(f"pij_sums_to_one[eps={eps_c:g}]", f"Σ_ij P(i, j) = 1 (ε = {eps_c:g}): a test of the "
                        "mixture normaliser Z(z) of Eq. 29b", "Eq. 33-34", pp["total"], 1.0, 4 * pp["se_total"],
                        ("importance sampling of F(x_i, x'_j); the weight reduces to f/Z/M², so this is "
                         "(1/M²) Σ_ij E[f(z, z')/Z(z)] over z ~ R(z|x_i), z' ~ R(z'|x'_j)",
                         "the claim: 1 (holds iff Z(z) is E_{mixture R(z')}[f(z, z')])")))
    # Eq. 31 with true marginals: ∫ R_base(x) R_base(x') F(x, x') = 1
    norm = EM.mc_pair_normalisation(m, lambda a, b: Mg.pair_log_likelihood(m, s.gauss, a, b),
                                    cfg["normalisation_samples"], s.rng("empirical/normalisation"))
    checks.append(check("true_marginal_p_normalised", "∫ P(x, x') dx dx' = E_{x ⊥ x'}[F(x, x')] = 1", "Eq. 31-32",
                        norm[0], 1.0, 4 * norm[1],
                        ("Monte Carlo over independent simulated x, x' of the closed-form F", "the claim: 1")))
    # Eq. 35-37: the mixture over data estimates the true marginal
    mix = EM.mixture_marginal_ratio(m, cfg["mixture_components"], cfg["mixture_points"], cfg["mixture_groups"],
                                    s.rng("empirical/mixture"))
    for name, (val, se) in mix.items():
        checks.append(check(f"mixture_is_true_marginal[{name}]", f"mean of (1/M)Σ_i R({name}|x_i) / R({name}) at "
                            "simulated test points = 1", "Eq. 35-37", val, 1.0, 4 * se,
                            ("Monte Carlo: mixture over simulated data (Eq. 37)",
                             "closed-form R(z) (Eq. 35), ratio 1")))
    q = {"pairs": M, "theta": theta, "classifier": {
        "accuracy_eps0": float(np.mean(np.argmax(cond0, 1) == np.arange(M))), "cross_entropy_pij_eps0": ce0,
        "infonce_loss_eps0": loss0, "chance": 1 / M, "eps": eps_c, "total_eps": pp["total"],
        "total_se_eps": pp["se_total"], "accuracy_eps": float(np.mean(np.argmax(condc, 1) == np.arange(M))),
        "cross_entropy_pij_eps": float(-np.mean(np.log(np.diag(condc))))},
        "normalisation": {"value": norm[0], "se": norm[1]}, "mixture": mix,
        "mixture_components": cfg["mixture_components"]}
    c = q["classifier"]
    prose = (
        "Paper: P(x,x′) = R_base(x)R_base(x′)F(x,x′) (Eq. 31); with empirical marginals \"P(i,j) = F(x_i,x′_j)/N²\" "
        "and \"the implied conditional, P(j|i) ... is almost exactly the InfoNCE classification problem\" (Eq. 34); "
        "in the true-marginal setting the sum over data points \"estimates the true value of R(z)\" (Eq. 35-37). "
        f"With deterministic encoders, −E log P(j=i|i) = {fmt(ce0, 8)} = the full-batch InfoNCE loss "
        f"{fmt(loss0, 8)} (bookkeeping: one matrix), accuracy of argmax_j P(j|i) {c['accuracy_eps0']:.3f} (chance "
        f"{c['chance']:.3f}). At ε = {eps_c:g}: Σ P(i,j) = {fmt(pp['total'])} ± {fmt(pp['se_total'], 2)} (importance "
        f"sampling), accuracy {c['accuracy_eps']:.3f}. True marginals: ∫P(x,x') = {fmt(norm[0])} ± {fmt(norm[1], 2)}. "
        f"The mixture over {cfg['mixture_components']} simulated data points against R(z): ratio "
        f"{fmt(mix['z'][0])} ± {fmt(mix['z'][1], 2)} (z), {fmt(mix['zp'][0])} ± {fmt(mix['zp'][1], 2)} (z').")
    return ClaimResult("empirical", TITLE, q, checks, books, [], prose)
