"""Realistic bugs the lab's checks must catch, applied one at a time by patching a function or property.

`python -m rpm_cli.theory.mutations` runs the lab at REDUCED for each bug and writes mutation_table.md (bug →
the checks that failed), which THEORY.md includes as documentation; tests/test_theory_mutations.py requires every
bug to make at least one counted check fail (a failing check, not an exception), and a bug that names `guards`
(the checks written to catch it) to fail each of them; it does not require the table to match."""
import contextlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from unittest import mock

import numpy as np
from omegaconf import OmegaConf

from rpm_cli.theory import critics, elbo_likelihood_slope, empirical, gaussian, limits, linalg, montecarlo, posterior
from rpm_cli.theory.claims import CLAIMS, setting
from rpm_cli.theory.lab import run_claims, validate_theory

# the lab at a few seconds a run: small samples, the same structure
REDUCED = {
    "elbo.samples": 100_000, "optimal_prior.samples": 50_000,
    "infonce_prior.samples": 100_000, "infonce_prior.nested_anchors": 8192, "infonce_prior.nested_inner": 128,
    "infonce_prior.nested_groups": 64, "infonce_prior.linear_samples": 200_000, "infonce_prior.anchor_samples": 65536,
    "info_nce.n_grid": [1, 2, 4, 64, 256], "info_nce.rows": 4096, "info_nce.pin_rows": 100_000,
    "info_nce.moment_samples": 100_000, "info_nce.eq7_n": [8, 29], "info_nce.eq7_rows": 32768,
    "learn.steps": 200, "learn.seeds": [10, 11, 12], "learn.finite_n_batches": 300,
    "eps_sweep.grid": [1.0, 0.1, 0.01, 0.001], "eps_sweep.mc_samples": 50_000,
    "appc.pairs": 12, "appc.eps_grid": [1.0, 0.3, 0.01], "appc.samples": 512, "appc.gap_samples": 2048,
    "empirical.classifier_samples": 32, "empirical.mixture_components": 20_000, "empirical.mixture_points": 16,
    "empirical.mixture_groups": 20, "empirical.normalisation_samples": 100_000,
    "free_posterior.pairs": 8, "free_posterior.samples": 2048, "free_posterior.gap_samples": 8192,
    "plot.theta_points": 20,
}
TABLE = Path(__file__).with_name("mutation_table.md")


@dataclass(frozen=True)
class Mutation:
    name: str
    where: str
    patches: Callable       # () -> list of (object, attribute, replacement)
    guards: tuple = ()      # checks written to catch this bug: each must fail under it (the test requires it)


def _log_const_wrong_sign(cov):
    return -0.5 * cov.shape[0] * linalg.LOG_2PI + 0.5 * linalg.logdet_spd(cov)       # + ½ log det


def _rows_log_n_plus_one(log_f, positives, N):
    return positives - linalg.logsumexp(log_f, axis=-1) + math.log(N + 1)


def _rows_without_positive(log_f, positives, N):
    return positives - np.logaddexp(linalg.logsumexp(log_f, axis=-1), positives) + math.log(N)


def _encode_with_a_for_both(model, prim, eps=None):
    eps = model.eps if eps is None else eps
    xp = model.rho * prim["x"] + math.sqrt(1.0 - model.rho ** 2) * prim["xi"]
    return prim["x"] @ model.A.T + eps * prim["eta"], xp @ model.A.T + eps * prim["etap"]


def _linear_normaliser_transposed(W, cov_zp):
    return 0.0, -(W.T @ cov_zp @ W)


def _gaussian_normaliser_theta_not_squared(theta, cov_zp):
    dz = cov_zp.shape[0]
    return (-0.5 * linalg.logdet_spd(np.eye(dz) + cov_zp / theta),
            linalg.inv_spd(cov_zp + theta * np.eye(dz)))



def _mixture_without_one_over_m(z, centres, eps):
    return _ORIGINAL_MIXTURE(z, centres, eps) + math.log(centres.shape[0])


def _kl_without_log_det(mean1, cov1, mean2, cov2):
    P2, delta = linalg.inv_spd(cov2), mean1 - mean2
    return 0.5 * (float(np.sum(P2 * cov1)) + float(delta @ P2 @ delta) - delta.size)


def _ratio_with_encoder_for_marginal(model, prior):
    d, enc = model.dz, model.eps ** 2 * np.eye(model.dz)
    K = prior.precision.copy()
    K[:d, :d] -= linalg.inv_spd(enc)
    K[d:, d:] -= linalg.inv_spd(enc)
    return prior.log_const - 2 * linalg.gaussian_log_const(enc), K


def _posterior_mean_without_one_over_eps2(model, prior, m):
    _, cov = _ORIGINAL_POSTERIOR(model, prior, m)
    return cov @ m, cov


def _limit_without_conditional_mean(model, prior_cov, m):
    return _ORIGINAL_FIXED_LIMIT(model, prior_cov, np.zeros_like(m))


_ORIGINAL_POSTERIOR = posterior.exact_posterior
_ORIGINAL_FIXED_LIMIT = posterior.fixed_prior_gap_limit
_ORIGINAL_GAP_RATE = elbo_likelihood_slope.pair_gap_rate
_ORIGINAL_MIXTURE = empirical.mixture_logpdf
_ORIGINAL_EMPIRICAL_Z = limits.empirical_log_normaliser
_ORIGINAL_OPTIMAL_W = critics.optimal_linear_W


MUTATIONS = [
    Mutation("sign of a log-determinant", "gaussian.gaussian_log_const: -½ log det(2πΣ) → +½ log det Σ",
             lambda: [(gaussian, "gaussian_log_const", _log_const_wrong_sign)]),
    Mutation("log N vs log(N+1)", "montecarlo.info_nce_rows: + log N → + log(N + 1)",
             lambda: [(montecarlo, "info_nce_rows", _rows_log_n_plus_one)]),
    Mutation("N vs N+1 columns", "montecarlo.pairs_per_batch: N + 1 → N (N - 1 negatives)",
             lambda: [(montecarlo, "pairs_per_batch", lambda N: N)]),
    Mutation("positive left out of the log-sum", "montecarlo.info_nce_rows: Σ over negatives only",
             lambda: [(montecarlo, "info_nce_rows", _rows_without_positive)]),
    Mutation("A vs A' (simulation)", "montecarlo.encode: z' = A x' + ε η'",
             lambda: [(montecarlo, "encode", _encode_with_a_for_both)]),
    Mutation("A vs A' (closed form)", "LinearGaussianRPM.cov_zp and .cross built from A (a valid covariance)",
             lambda: [(gaussian.LinearGaussianRPM, "cov_zp",
                       property(lambda m: m.A @ m.A.T + m.eps ** 2 * np.eye(m.dz))),
                      (gaussian.LinearGaussianRPM, "cross", property(lambda m: m.rho * m.A @ m.A.T))]),
    Mutation("Σz vs Σz'", "critics.partner_covariance: Z(z) integrates against Σ_z (every closed form)",
             lambda: [(critics, "partner_covariance", lambda m: m.cov_z)]),
    Mutation("W vs Wᵀ", "critics.linear_critic_log_normaliser: W Σ' Wᵀ → Wᵀ Σ' W",
             lambda: [(critics, "linear_critic_log_normaliser", _linear_normaliser_transposed)]),
    Mutation("W* transposed", "critics.optimal_linear_W returns (W*)ᵀ",
             lambda: [(critics, "optimal_linear_W", lambda m: _ORIGINAL_OPTIMAL_W(m).T)]),
    Mutation("ε vs ε²", "LinearGaussianRPM.cov_z: A Aᵀ + ε I",
             lambda: [(gaussian.LinearGaussianRPM, "cov_z", property(lambda m: m.A @ m.A.T + m.eps * np.eye(m.dz)))]),
    Mutation("θ vs θ² in Z", "critics.gaussian_critic_log_normaliser: θ² → θ",
             lambda: [(critics, "gaussian_critic_log_normaliser", _gaussian_normaliser_theta_not_squared)]),
    Mutation("a dropped 1/M in Z (Eq. 51)", "limits.empirical_log_normaliser: no - log M",
             lambda: [(limits, "empirical_log_normaliser",
                       lambda z, c, e, t: _ORIGINAL_EMPIRICAL_Z(z, c, e, t) + math.log(c.shape[0]))]),
    Mutation("a dropped 1/M in the mixture (Eq. 29, 37)", "empirical.mixture_logpdf: no - log M",
             lambda: [(empirical, "mixture_logpdf", _mixture_without_one_over_m)]),
    Mutation("log-det dropped from the Gaussian KL", "posterior.gaussian_kl: no ½ log det S₂ − ½ log det S₁",
             lambda: [(posterior, "gaussian_kl", _kl_without_log_det)],
             guards=("posterior_elbo_is_log_p[infonce]", "posterior_elbo_is_log_p[fixed]", "eq14_gap[infonce]",
                     "eq14_gap[fixed]")),
    Mutation("the encoder for the marginal in the log ratio",
             "posterior.log_ratio_form: R(z), R(z') → the encoder's N(·, ε²I) (Σ_z, Σ_z' → ε²I)",
             lambda: [(posterior, "log_ratio_form", _ratio_with_encoder_for_marginal)],
             guards=("free_q_elbo[infonce,Q=1]", "free_q_elbo[fixed,Q=1]")),
    Mutation("1/ε² dropped from Q*'s mean", "posterior.exact_posterior: Λ*μ = m instead of m/ε²",
             lambda: [(posterior, "exact_posterior", _posterior_mean_without_one_over_eps2)],
             guards=("posterior_elbo_is_log_p[infonce]", "posterior_elbo_is_log_p[fixed]",
                     "posterior_integrand_constant[infonce]", "posterior_integrand_constant[fixed]")),
    Mutation("prior's conditional mean dropped from C₀", "posterior.fixed_prior_gap_limit: b = VᵀPm → 0",
             lambda: [(posterior, "fixed_prior_gap_limit", _limit_without_conditional_mean)],
             guards=("gap_limit[fixed]",)),
    Mutation("½ dropped from App. C's gap rate", "elbo_likelihood_slope.pair_gap_rate: ½‖Km‖² → ‖Km‖²",
             lambda: [(elbo_likelihood_slope, "pair_gap_rate", lambda *a: 2 * _ORIGINAL_GAP_RATE(*a))],
             guards=("gap_limit[infonce]",)),
]


@contextlib.contextmanager
def applied(mutation: Mutation):
    with contextlib.ExitStack() as stack:
        for target, attribute, replacement in mutation.patches():
            stack.enter_context(mock.patch.object(target, attribute, replacement))
        yield


def reduced_config(path="configs/theory.yaml") -> dict:
    cfg = OmegaConf.load(path)
    for key, value in REDUCED.items():
        OmegaConf.update(cfg, key, value)
    return cfg


def failed_checks(c: dict, order=CLAIMS, guards=None) -> list:
    """Names of the counted checks that fail (or raise) on config c, the claims run in `order`. With `guards`
    (a bug's own), the run stops once a check has failed and every guard has run: all the test asks, so a bug
    that a cheap claim catches skips the dear ones. The table wants every failing check: guards=None."""
    failed, ran = [], set()
    try:
        s = setting.build(c)  # inside the mutation: a patched model class must build the setting
        for module in order:
            checks = module.run(s).checks
            ran.update(x["name"] for x in checks)
            failed += [x["name"] for x in checks if x["passed"] is False]
            if guards is not None and failed and ran >= set(guards):
                break
    except (ValueError, FloatingPointError, np.linalg.LinAlgError, ZeroDivisionError) as exc:
        return [f"(the lab raised {type(exc).__name__})"]
    return failed


def run_mutations(cfg, complete: bool = True) -> dict:
    """{bug name: failed checks}, with the unmutated lab under "none" (every claim). complete=False is the
    test's run: each bug's claims cheapest first (timed on the unmutated lab), stopped once it is caught."""
    c = validate_theory(cfg)
    _, claims, seconds = run_claims(c)
    out = {"none": [x["name"] for r in claims for x in r.checks if x["passed"] is False]}
    cheapest_first = [module for module, r in sorted(zip(CLAIMS, claims), key=lambda pair: seconds[pair[1].key])]
    for mutation in MUTATIONS:
        with applied(mutation), np.errstate(all="ignore"):
            out[mutation.name] = (failed_checks(c) if complete else
                                  failed_checks(c, cheapest_first, mutation.guards))
    return out


def table(results: dict) -> str:
    lines = ["Each bug is patched into the lab on its own (`rpm_cli/theory/mutations.py`, run by "
             "`tests/test_theory_mutations.py` at a reduced config) and must make at least one counted check fail "
             "(the test requires a failing check, not an exception). This table is regenerated by "
             "`python -m rpm_cli.theory.mutations`; the test does not compare it (a borderline check may flip under "
             "another BLAS).",
             "", "| bug | where | checks that failed |", "|---|---|---|"]
    for mutation in MUTATIONS:
        failed = results[mutation.name]
        lines.append(f"| {mutation.name} | {mutation.where} | "
                     f"{', '.join(f'`{n}`' for n in failed) if failed else '**none: not caught**'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    res = run_mutations(reduced_config(sys.argv[1] if len(sys.argv) > 1 else "configs/theory.yaml"))
    if res["none"]:
        sys.exit(f"the unmutated lab fails at the reduced config: {res['none']}")
    TABLE.write_text(table(res))
    print(table(res))
