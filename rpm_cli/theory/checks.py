"""What a claim returns: checks (counted), bookkeeping (shown, not counted) and verdicts on the paper's words.

A *check* compares two numbers from different code: a closed form against simulation from the densities or
against quadrature. Its tolerance is stated (standard errors, an analytic remainder, float slack) and, for a
Monte Carlo check, `scale` says which size the 2% sensitivity refers to (tol / scale is reported). An equality
check *catches a 2% error* when |lhs - rhs| + tol < 0.02 · scale: then an error that moves either side by 2% of
scale, in either direction, takes |lhs - rhs| past tol at the observed offset.
*Bookkeeping* is an identity that holds by construction in our own code (the per-sample ELBO = MI - KL, Jensen on
one function): shown with its numbers, never counted. A *verdict* reports a measured test of a sentence of the
paper: 'holds', or 'refuted' when the measurement contradicts it by more than its tolerance.
"""
import math
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

ULP = float(np.finfo(np.float64).eps)
SLACK_ULPS = 1024


def stream(seed: int, name: str) -> np.random.Generator:
    """One independent, reproducible random stream per named estimate."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode())]))


def float_slack(*values, cond: float = 1.0) -> float:
    """Float slack for comparing closed-form numbers: 1024 ulp × a condition number × their magnitude."""
    return SLACK_ULPS * ULP * cond * max([1.0] + [abs(v) for v in values if math.isfinite(v)])


def _record(kind, name, claim, eq, lhs, rhs, tol, rel, sides, note, scale):
    lhs, rhs, tol = float(lhs), float(rhs), float(tol)
    diff = abs(lhs - rhs) if rel == "=" else lhs - rhs
    ok = bool(math.isfinite(diff) and diff <= tol)
    scale = abs(rhs) if scale is None else abs(float(scale))
    # (|lhs - rhs| + tol) / scale: below 2% means moving either side by 2% of scale, either way, fails the check
    margin = (abs(lhs - rhs) + tol) / scale if scale > 0 and math.isfinite(diff) else math.inf
    return {"kind": kind, "name": name, "claim": claim, "eq": eq, "rel": rel, "lhs": lhs, "rhs": rhs, "diff": diff,
            "tol": tol, "passed": ok, "lhs_from": sides[0], "rhs_from": sides[1], "note": note,
            "scale": scale, "tol_over_scale": tol / scale if scale > 0 else math.inf, "margin_over_scale": margin,
            "catches_2pct": bool(rel == "=" and margin < 0.02)}


def check(name, claim, eq, lhs, rhs, tol, sides, rel="=", note="", scale=None) -> dict:
    """A counted check: rel '=' passes when |lhs - rhs| ≤ tol, '≤' when lhs - rhs ≤ tol."""
    return _record("check", name, claim, eq, lhs, rhs, tol, rel, sides, note, scale)


def skipped(name, claim, eq, reason, sides=("", "")) -> dict:
    rec = _record("check", name, claim, eq, math.nan, math.nan, math.nan, "=", sides, f"skipped: {reason}", 1.0)
    rec["passed"] = None
    return rec


def bookkeeping(name, claim, eq, lhs, rhs, why, rel="=", tol=None) -> dict:
    """An identity of our own code (holds by construction): shown, not counted."""
    tol = float_slack(lhs, rhs) if tol is None else tol
    return _record("bookkeeping", name, claim, eq, lhs, rhs, tol, rel, ("", ""), why, None)


def verdict(name, claim, eq, measured, bound, se, sides, note="") -> dict:
    """The paper's inequality measured ≤ bound: 'holds' when measured + 4 SE < bound, 'refuted' when
    measured - 4 SE > bound, 'undecided' in between. Never counted as a check."""
    rec = _record("verdict", name, claim, eq, measured, bound, 4 * se, "≤", sides, note, None)
    rec["status"] = ("holds" if measured + 4 * se < bound else "refuted" if measured - 4 * se > bound
                     else "undecided")
    rec["passed"] = rec["status"] == "holds"
    rec["z"] = (measured - bound) / se if se > 0 else math.inf
    return rec


def rule_verdict(name, claim, eq, lhs, rhs, holds: bool, sides, note="") -> dict:
    """A verdict decided by a stated rule rather than by standard errors (e.g. a sign heuristic): 'holds' or
    'refuted', never counted as a check."""
    rec = _record("verdict", name, claim, eq, lhs, rhs, 0.0, "=", sides, note, None)
    rec["status"] = "holds" if holds else "refuted"
    rec["passed"] = bool(holds)
    rec["z"] = math.nan
    return rec


def eps_panels(plt, q):
    """Two panels against the encoder noise ε of q["rows"]: (fig, left, right, ε, rows)."""
    rows = q["rows"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    return fig, left, right, np.array([r["eps"] for r in rows]), rows


def label_axes(ax, xlabel, ylabel, title, log_x=False, reverse_x=False, legend_loc="best") -> None:
    if log_x:
        ax.set_xscale("log")
    if reverse_x:
        ax.invert_xaxis()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc=legend_loc)


@dataclass
class Figure:
    stem: str                 # file name without extension
    alt: str
    draw: Callable            # draw(plt) -> matplotlib figure


@dataclass
class ClaimResult:
    key: str                  # the claim's section in theory.json
    title: str
    quantities: dict
    checks: list = field(default_factory=list)        # counted checks and skips
    bookkeeping: list = field(default_factory=list)
    verdicts: list = field(default_factory=list)
    prose: str = ""           # markdown, written by the claim from its own numbers
    figures: list = field(default_factory=list)


def status_word(rec: dict) -> str:
    if rec["kind"] == "verdict":
        return rec["status"].upper()
    if rec["kind"] == "bookkeeping":
        return "holds" if rec["passed"] else "BROKEN"
    return "SKIP" if rec["passed"] is None else ("PASS" if rec["passed"] else "FAIL")
