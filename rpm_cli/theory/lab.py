"""The theory lab's runner: validate the config against every claim's keys, run the claims in order, write
theory.json, the figures (PNG + PDF) and THEORY.md.

    validate_theory(cfg)          every key checked before any work (UserError naming the key)
    run_theory(cfg, out_dir)      runs the claims; returns the result dict (checks, bookkeeping, verdicts, ...)
    format_table(result)          the checks as a text table
"""
import math
import time
from pathlib import Path

import numpy as np

from rpm_cli.atomic import write_json, write_text
from rpm_cli.errors import UserError
from rpm_cli.theory import keys
from rpm_cli.theory.claims import CLAIMS, setting
from rpm_cli.theory.render import format_table, theory_md  # noqa: F401 (format_table is part of the API)

RULES = {k: v for module in (setting, *CLAIMS) for k, v in module.KEYS.items()}
# Bounds on the largest arrays (float64 elements), so no setting allocates more than a few hundred MB.
PRODUCTS = [
    (("elbo.samples", "model.dz"), 16_000_000),
    (("infonce_prior.samples", "model.dz"), 16_000_000),
    (("appc.pairs", "appc.gap_samples", "model.dz"), 16_000_000),
    (("free_posterior.samples", "free_posterior.pairs", "model.dz"), 16_000_000),
    (("free_posterior.gap_samples", "free_posterior.pairs", "model.dz"), 16_000_000),
    (("empirical.classifier_samples", "appc.pairs", "appc.pairs"), 2_000_000),
    (("empirical.mixture_components", "empirical.mixture_points"), 64_000_000),
    (("learn.batch_size", "learn.batch_size", "learn.seeds"), 4_000_000),
    (("learn.finite_n_batches", "learn.batch_size", "learn.batch_size"), 8_000_000),
]


def validate_theory(cfg) -> dict:
    """Check every key before any work; UserError(f"{key} must be {rule} (got {value!r})") on the first bad one.
    Returns the config as a plain dict (without `hydra`)."""
    c = keys.validate(cfg, RULES, PRODUCTS)
    lo, hi = keys.get(c, "plot.theta_range")
    if not lo < hi:
        raise UserError(f"plot.theta_range must be [lo, hi] with lo < hi (got {[lo, hi]!r})")
    if c["infonce_prior"]["nested_anchors"] < 2 * c["infonce_prior"]["nested_groups"]:
        raise UserError(f"infonce_prior.nested_anchors must be at least 2 × infonce_prior.nested_groups "
                        f"(got {c['infonce_prior']['nested_anchors']!r})")
    return c


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else str(float(x))
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def run_claims(c: dict):
    """Run every claim on a validated config: (setting, claim results, seconds per claim). Nothing is written."""
    s = setting.build(c)
    claims, seconds = [], {}
    for module in CLAIMS:
        t = time.perf_counter()
        claims.append(module.run(s))
        seconds[claims[-1].key] = time.perf_counter() - t
    return s, claims, seconds


def collect(c: dict, s, claims, seconds) -> dict:
    """The result dict of theory.json: config, model, each claim's quantities, and its records by kind."""
    result = {"config": c, "model": setting.describe(s),
              "conventions": {"constant": "log R_base(x) R_base(x') (Eq. 13) dropped from every ELBO / log P",
                              "eps": "encoder noise standard deviation; the paper's Eq. 46 ε is the variance ε²",
                              "i_n": "Eq. 6 as written: N negatives, log-sum over all N+1 columns, + log N; N = B - 1"},
              "claims": [{"key": r.key, "title": r.title, "checks": [x["name"] for x in r.checks]} for r in claims],
              "checks": [x for r in claims for x in r.checks],
              "bookkeeping": [x for r in claims for x in r.bookkeeping],
              "verdicts": [x for r in claims for x in r.verdicts],
              "claim_seconds": seconds}
    result.update({r.key: r.quantities for r in claims})
    return result


def run_theory(cfg, out_dir) -> dict:
    """Validate, run every claim, write theory.json, the figures (PNG + PDF) and THEORY.md into out_dir."""
    from rpm_cli.plotting import plt, save_figure  # matplotlib only once the lab draws

    t0 = time.perf_counter()
    c = validate_theory(cfg)
    out_dir = Path(out_dir)
    s, claims, seconds = run_claims(c)
    result = collect(c, s, claims, seconds)
    files = [p for r in claims for fig in r.figures for p in save_figure(fig.draw(plt), out_dir / fig.stem)]
    md, js = out_dir / "THEORY.md", out_dir / "theory.json"
    result["files"] = [str(p) for p in files] + [str(js), str(md)]
    result["seconds"] = time.perf_counter() - t0
    write_text(md, theory_md(result, claims))
    write_json(js, _jsonable(result))
    return result
