"""THEORY.md and the text table, rendered from what each claim returned (no lookup of checks by name)."""
import math
from pathlib import Path

from rpm_cli.theory.checks import status_word

MUTATION_TABLE = Path(__file__).with_name("mutation_table.md")


def _num(x, p=6):
    return f"{x:.{p}g}" if isinstance(x, (int, float)) and math.isfinite(x) else ("" if x is None else str(x))


def format_table(result: dict) -> str:
    """Counted checks, then bookkeeping and verdicts, as fixed-width text: LHS, relation, RHS, difference
    (|lhs − rhs|, or lhs − rhs for ≤), tolerance, (|diff| + tol)/scale (< 2%: a 2% error fails it), status."""
    head = (f"{'check':46s} {'lhs':>13s} rel {'rhs':>13s} {'diff':>10s} {'tol':>10s} {'(d+tol)/s':>9s}  result")
    lines = []
    for title, recs in (("counted checks", result["checks"]), ("bookkeeping (holds by construction, not counted)",
                                                                result["bookkeeping"]),
                        ("verdicts on the paper's words (measured, not counted)", result["verdicts"])):
        lines += ["", f"== {title}", head, "-" * len(head)]
        for r in recs:
            if r["passed"] is None and r["kind"] == "check":
                lines.append(f"{r['name']:46s} {'':>13s}     {'':>13s} {'':>10s} {'':>10s} {'':>9s}  SKIP")
                continue
            ratio = f"{r['margin_over_scale']:9.2%}" if r["kind"] == "check" and math.isfinite(r["margin_over_scale"]) \
                and r["rel"] == "=" else f"{'':9s}"
            lines.append(f"{r['name']:46s} {r['lhs']:13.6g} {r['rel']:^3s} {r['rhs']:13.6g} {r['diff']:10.3g} "
                         f"{r['tol']:10.3g} {ratio}  {status_word(r)}")
    lines.append("")
    lines.append(summary_line(result))
    return "\n".join(lines[1:])


def counts(result: dict) -> dict:
    ch = result["checks"]
    return {"passed": sum(c["passed"] is True for c in ch), "failed": sum(c["passed"] is False for c in ch),
            "skipped": sum(c["passed"] is None for c in ch), "bookkeeping": len(result["bookkeeping"]),
            "refuted": sum(v["status"] == "refuted" for v in result["verdicts"]), "verdicts": len(result["verdicts"])}


def summary_line(result: dict) -> str:
    n = counts(result)
    return (f"{n['passed']} checks passed, {n['failed']} failed, {n['skipped']} skipped; {n['bookkeeping']} "
            f"bookkeeping identities (not counted); {n['refuted']} of {n['verdicts']} verdicts refute a sentence of "
            f"the paper. Exit status {1 if n['failed'] else 0} (`rpm theory` exits 1 when any counted check fails).")


def _cell(text) -> str:
    """A markdown table cell: a literal | (as in R(z|x) or |diff|) would end the cell, so it is escaped."""
    return str(text).replace("|", "\\|")


def _check_rows(recs) -> list:
    out = ["| check | equation | computed as (lhs) | against (rhs) | lhs | rhs | tol | (\\|diff\\| + tol) / scale "
           "| result |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        ratio = (f"{r['margin_over_scale']:.2%}" if r["kind"] == "check" and r["rel"] == "="
                 and math.isfinite(r["margin_over_scale"]) else "—")
        out.append(f"| `{r['name']}` | {_cell(r['eq'])} | {_cell(r['lhs_from'])} | {_cell(r['rhs_from'])} | "
                   f"{_num(r['lhs'])} | {r['rel']} {_num(r['rhs'])} | {_num(r['tol'], 3)} | {ratio} | "
                   f"**{status_word(r)}** |" + (f" {_cell(r['note'])}" if r["passed"] is None else ""))
    return out


def _book_rows(recs) -> list:
    out = ["| identity | equation | lhs | rhs | why it cannot fail |", "|---|---|---|---|---|"]
    out += [f"| `{r['name']}` | {_cell(r['eq'])} | {_num(r['lhs'], 10)} | {r['rel']} {_num(r['rhs'], 10)} | "
            f"{_cell(r['note'])} |" for r in recs]
    return out


def _two_percent(result: dict) -> str:
    eq = [c for c in result["checks"] if c["rel"] == "=" and c["passed"] is not None]
    miss = [c for c in eq if not c["catches_2pct"]]
    if not miss:
        return f"All {len(eq)} equality checks catch a 2% error."
    return (f"{len(eq) - len(miss)} of {len(eq)} equality checks catch a 2% error; the others resolve "
            + ", ".join(f"`{c['name']}` {c['margin_over_scale']:.1%} of its scale ({c['note'] or 'see its row'})"
                        for c in miss) + ".")


def theory_md(result: dict, claims) -> str:
    m = result["model"]
    n = counts(result)
    lines = [
        "# Linear-Gaussian RPM: the paper's relations, checked",
        "",
        f"Aitchison & Ganev (TMLR 2024), Sec. 3-4 and App. A-C, on x ~ N(0, I_{m['dx']}), x' = ρx + √(1-ρ²)ξ "
        f"(ρ = {m['rho']}), linear encoders R(z|x) = N(Ax, ε²I_{m['dz']}), R(z'|x') = N(A'x', ε²I) with ε = "
        f"{m['eps']} **a standard deviation** (the paper's Eq. 46 writes N(g(x), εI) with a variance; see claim 6), "
        + ("a shared encoder A′ = A (so Σ_z = Σ_z′)" if m["shared_encoder"] else
           "unshared encoders A′ ≠ A (so Σ_z ≠ Σ_z′)")
        + f", the optimal linear critic's ‖W − Wᵀ‖/‖W‖ = {m['W_asymmetry']:.3f} (0 means a symmetric W), encoder seed "
        f"{m['encoder_seed']}. ELBOs and log-likelihoods drop the data constant log R_base(x)R_base(x') of Eq. 13.",
        "",
        f"**{n['passed']} checks passed, {n['failed']} failed, {n['skipped']} skipped** (run time "
        f"{result['seconds']:.1f} s). A *check* compares two numbers computed by different code: a closed form "
        "against Monte Carlo simulation from the densities, or against quadrature; its tolerance is 4 standard "
        "errors plus, where stated, an analytic remainder or an estimated bias. An equality check *catches a 2% "
        "error* when |lhs − rhs| + tol < 2% of its `scale` (the size the error is relative to, usually |rhs|): an "
        "error that moves either side by 2% of scale, in either direction, then fails it at the observed offset. "
        + _two_percent(result) + f" {n['bookkeeping']} *bookkeeping* identities hold by construction in our own "
        "code and are shown, not counted; *verdicts* measure a sentence of the paper and are not counted either. "
        f"**{n['refuted']} of {n['verdicts']} verdicts refute the paper's words** (Eq. 7's \"I∞ ≥ I_N\", claim 4). "
        "`rpm theory` exits with status 1 when any counted check fails (after writing the table and the files).",
        "",
        "## Computed twice",
        "",
        "| check | one side | the other side |",
        "|---|---|---|",
    ]
    lines += [f"| `{c['name']}` | {_cell(c['lhs_from'])} | {_cell(c['rhs_from'])} |" for c in result["checks"]
              if c["lhs_from"]]
    for claim in claims:
        lines += ["", f"## {claim.title}", "", claim.prose, ""]
        for fig in claim.figures:
            lines += [f"![{fig.alt}]({fig.stem}.png)", ""]
        if claim.checks:
            lines += ["Checks:", ""] + _check_rows(claim.checks) + [""]
        if claim.verdicts:
            lines += ["Verdicts (measured, not counted):", ""] + _check_rows(claim.verdicts) + [""]
        if claim.bookkeeping:
            lines += ["Bookkeeping (holds by construction, not counted):", ""] + _book_rows(claim.bookkeeping) + [""]
    lines += ["## Mutation test", ""]
    lines += ([MUTATION_TABLE.read_text().strip()] if MUTATION_TABLE.exists()
              else ["(no mutation table: run `python -m rpm_cli.theory.mutations`)"])
    lines += ["", "## All checks", "", "```", format_table(result), "```", ""]
    return "\n".join(lines)


__all__ = ["format_table", "theory_md", "counts"]
