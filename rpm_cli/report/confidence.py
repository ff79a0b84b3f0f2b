"""The registered study's section of REPORT.md (configs/protocol.yaml): per arm the success count with a
Wilson interval, failures split into catastrophic and marginal, the median slot L2 of the successful seeds
with a bootstrap interval; each prior against the Gaussian by exact McNemar on the shared seeds (success) and
Mann-Whitney (precision), Holm-corrected per family; the power line; how far each verdict reaches in
threshold. The words of a verdict follow its test."""
import math
import subprocess

from rpm_cli import CONFIG_DIR
from rpm_cli import stats
from rpm_cli.reproduction import PROTOCOL, REPORTING_SEEDS

THRESHOLDS_PX = (1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 16.0)  # the grid a verdict's reach is read on (5 registered)


def registration_commit(name: str = "protocol.yaml") -> str:
    """The commit that added configs/<name>, or a phrase saying it is unknown (no git checkout)."""
    try:
        out = subprocess.run(["git", "log", "--diff-filter=A", "--format=%h %cs", "--", name],
                             cwd=CONFIG_DIR, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    lines = out.stdout.strip().splitlines()
    return f"`{lines[-1]}`" if out.returncode == 0 and lines else "unknown (not a git checkout)"


def worst_ball_px(run: dict, video: str = PROTOCOL.primary_endpoint.video) -> float:
    """The run's largest matched per-ball error on a video (the endpoint's by default): every ball is tracked
    iff this is below the threshold."""
    return max(run[video]["slot_matched_px"])


def tracked(run: dict, threshold_px: float) -> bool:
    return worst_ball_px(run) < threshold_px


def _successes(runs, threshold_px) -> dict[int, bool]:
    return {r["seed"]: tracked(r, threshold_px) for r in runs}


def _precision(runs, threshold_px) -> list[float]:
    video = PROTOCOL.secondary_endpoint.video
    return [r[video]["slot_l2_px"] for r in runs if tracked(r, threshold_px)]


def success_p(runs_a, runs_b, threshold_px) -> float:
    """Exact McNemar on the seeds both arms ran."""
    a, b = _successes(runs_a, threshold_px), _successes(runs_b, threshold_px)
    shared = sorted(a.keys() & b.keys())
    return stats.mcnemar_exact(sum(a[s] and not b[s] for s in shared), sum(b[s] and not a[s] for s in shared))


def arm_row(method: str, runs: list[dict]) -> str:
    threshold = PROTOCOL.primary_endpoint.threshold_px
    n, k = len(runs), sum(tracked(r, threshold) for r in runs)
    low, high = stats.wilson(k, n)
    catastrophic = sum(worst_ball_px(r) >= PROTOCOL.catastrophic_px for r in runs)
    median, m_low, m_high = stats.bootstrap_median(_precision(runs, threshold))
    precision = "—" if math.isnan(median) else f"{median:.2f} [{m_low:.2f}, {m_high:.2f}]"
    return (f"| {method} | {n} | {k}/{n} | {k / n:.0%} [{low:.0%}, {high:.0%}] | {n - k - catastrophic} "
            f"| {catastrophic} | {precision} |")


def _verdict_words(n: int, p_adjusted: float, better: bool, what: str, than: str) -> str:
    if math.isnan(p_adjusted):
        return "no test (an arm has no successful seed)"
    if p_adjusted > PROTOCOL.alpha:
        return f"no difference detectable at n = {n}"
    return f"{what.format('more' if better else 'less')} than {than}"


TRACKS = "tracks every ball {} often"
PRECISE = "{} precise when both track"


def registered_comparisons(arms: dict[str, dict[str, list[dict]]]) -> list[dict]:
    """The comparisons configs/protocol.yaml registers that these runs allow: (label, the two arms' runs, the
    reference's words), success and precision p-values, Holm-adjusted over each whole family."""
    threshold = PROTOCOL.primary_endpoint.threshold_px
    rows = []
    study = arms.get(PROTOCOL.preset, {})
    if "gaussian" in study:
        rows += [{"label": f"{m} against the Gaussian", "a": study[m], "b": study["gaussian"],
                  "than": "the Gaussian", "precision": True}
                 for m in study if m not in ("gaussian", "supervised")]
    paper = arms.get(PROTOCOL.appendix_d.preset, {})
    for spec in PROTOCOL.comparisons:
        if spec.kind == "tuned_vs_paper":
            rows += [{"label": f"{m}: {PROTOCOL.preset} recipe against Appendix D", "a": study[m], "b": paper[m],
                      "than": "Appendix D", "precision": False} for m in spec.arms if m in study and m in paper]
    for row in rows:
        row["success_p"] = success_p(row["a"], row["b"], threshold)
        row["precision_p"] = (stats.mann_whitney(_precision(row["a"], threshold), _precision(row["b"], threshold))
                              if row["precision"] else math.nan)
    return holm_per_family(rows, ("success_p", "precision_p"))


def holm_per_family(rows: list[dict], families) -> list[dict]:
    """Each family's p-values (a key of every row) Holm-adjusted over the rows, as `<family>_holm`."""
    for family in families:
        for row, adjusted in zip(rows, stats.holm([row[family] for row in rows])):
            row[family + "_holm"] = adjusted
    return rows


def success_rate(runs, threshold_px) -> float:
    return sum(_successes(runs, threshold_px).values()) / len(runs)


def comparisons(arms: dict[str, dict[str, list[dict]]]) -> list[str]:
    """The registered comparisons as a table: tests, Holm-adjusted p-values and the words they allow."""
    threshold = PROTOCOL.primary_endpoint.threshold_px
    lines = ["| comparison | every ball tracked: p (exact McNemar) | Holm | verdict | thresholds it holds at (px) "
             "| slot L2 when tracked: p (Mann–Whitney) | Holm | verdict |", "|---" * 8 + "|"]
    for row in registered_comparisons(arms):
        a, b = row["a"], row["b"]
        n = len({r["seed"] for r in a} & {r["seed"] for r in b})
        rate = {id(runs): success_rate(runs, threshold) for runs in (a, b)}
        words = _verdict_words(n, row["success_p_holm"], rate[id(a)] > rate[id(b)], TRACKS, row["than"])
        median = {id(runs): stats.bootstrap_median(_precision(runs, threshold))[0] for runs in (a, b)}
        precise = (_verdict_words(n, row["precision_p_holm"], median[id(a)] < median[id(b)], PRECISE, row["than"])
                   if row["precision"] else "—")
        lines.append(f"| {row['label']} | {row['success_p']:.3g} | {row['success_p_holm']:.3g} | {words} "
                     f"| {_reach(a, b, words)} | {_p(row['precision_p'])} | {_p(row['precision_p_holm'])} "
                     f"| {precise} |")
    return lines


def _p(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3g}"


def _reach(runs, reference, words: str) -> str:
    """The span of thresholds over which the unadjusted success test keeps the verdict's side of alpha."""
    significant = not words.startswith(("no difference", "no test"))

    def holds(threshold):
        return (success_p(runs, reference, threshold) <= PROTOCOL.alpha) == significant

    span = stats.threshold_range(holds, THRESHOLDS_PX, PROTOCOL.primary_endpoint.threshold_px)
    return "—" if span is None else f"{span[0]:g}–{span[1]:g}"


def study_section(arms: dict[str, dict[str, list[dict]]]) -> str:
    """The section: {preset: {method: [run records with seed]}} of the registered study's runs."""
    registered_n = {PROTOCOL.preset: PROTOCOL.n_seeds, PROTOCOL.appendix_d.preset: PROTOCOL.appendix_d.n_seeds}
    short = {p: min(len(runs) for runs in methods.values()) for p, methods in arms.items()
             if min(len(runs) for runs in methods.values()) < registered_n.get(p, PROTOCOL.n_seeds)}
    n_min = min(len(runs) for runs in arms.get(PROTOCOL.preset, next(iter(arms.values()))).values())
    threshold = PROTOCOL.primary_endpoint.threshold_px
    baseline = PROTOCOL.power.baseline_rate
    drop = stats.smallest_detectable_drop(baseline, n_min, PROTOCOL.alpha, PROTOCOL.power.target)
    detectable = (f"only if it is at least {drop:.0%} (to {baseline - drop:.0%})" if drop < baseline
                  else "not even when the rate falls to 0")
    head = [
        f"Registered in `configs/protocol.yaml` by commit {registration_commit()}, before its reporting runs. "
        f"Primary endpoint: every ball tracked, each ball's matched error on the {PROTOCOL.primary_endpoint.video} "
        f"video below {threshold:g} px; a failure is catastrophic when some ball's error reaches "
        f"{PROTOCOL.catastrophic_px:g} px (a map on no ball), marginal otherwise. Intervals are 95 %: Wilson for "
        f"rates, percentile bootstrap for medians. Tests: exact McNemar on the shared seeds (success), "
        f"Mann–Whitney over the successful seeds (precision), each family Holm-corrected at α = {PROTOCOL.alpha:g} "
        f"over all its registered comparisons that these runs allow.",
        f"**Power.** With n = {n_min} seeds per arm, a drop in success rate from {baseline:.0%} is detected "
        f"with {PROTOCOL.power.target:.0%} power (Fisher, α = {PROTOCOL.alpha:g}, uncorrected) {detectable}."]
    for preset, n in short.items():
        head.append(f"**{preset}: {n} seeds per arm, not the registered {registered_n.get(preset, PROTOCOL.n_seeds)}: "
                    f"the tests below cannot support a comparison at this n (a quick look); read them as anecdotes.**")
    recipes = ", ".join(f"`{p}` ({sum(len(runs) for runs in methods.values())} runs)" for p, methods in arms.items())
    head.append(f"**Recipes already evaluated on these seeds**: {recipes}, all by `make reproduce` after the "
                f"registration; no run of any kind had used seeds {min(REPORTING_SEEDS)}–{max(REPORTING_SEEDS)} "
                f"before it. The earlier reporting seeds {', '.join(map(str, PROTOCOL.seeds.spent))} saw two "
                "recipes (the last BatchNorm's initial shift at −6 and at −8, the −8 one rejected after it was "
                "seen there) and are never reported again.")
    body = "\n\n".join(head)
    for preset, methods in arms.items():
        table = [f"| {preset}: arm | n | every ball tracked | rate [95 % CI] | marginal failures "
                 "| catastrophic failures | median slot L2 when tracked, px [95 % CI] |", "|---" * 7 + "|"]
        body += "\n\n" + "\n".join(table + [arm_row(m, runs) for m, runs in methods.items()])
    rows = comparisons(arms)
    if len(rows) > 2:
        body += "\n\nThe registered comparisons:\n\n" + "\n".join(rows)
    return body
