"""The registered study's section of REPORT.md (configs/protocol.yaml): per arm the success count with a
Wilson interval, failures split into catastrophic and marginal, the median slot L2 of the successful seeds
with a bootstrap interval; each prior against the Gaussian by exact McNemar on the shared seeds (success) and
Mann-Whitney (precision), Holm-corrected per family; the power line; how far each verdict reaches in
threshold. The words of a verdict follow its test."""
import math
import subprocess

from rpm_cli import CONFIG_DIR
from rpm_cli import stats
from rpm_cli.reproduction import PROTOCOL

THRESHOLDS_PX = (1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 16.0)  # the grid a verdict's reach is read on (5 registered)


def registration_commit() -> str:
    """The commit that added configs/protocol.yaml, or a phrase saying it is unknown (no git checkout)."""
    try:
        out = subprocess.run(["git", "log", "--diff-filter=A", "--format=%h %cs", "--", "protocol.yaml"],
                             cwd=CONFIG_DIR, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    lines = out.stdout.strip().splitlines()
    return f"`{lines[-1]}`" if out.returncode == 0 and lines else "unknown (not a git checkout)"


def worst_ball_px(run: dict) -> float:
    """The run's largest matched per-ball error on the endpoint's video: every ball is tracked iff this is
    below the threshold."""
    return max(run[PROTOCOL.primary_endpoint.video]["slot_matched_px"])


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


def _verdict_words(family: str, n: int, p_adjusted: float, better: bool) -> str:
    if math.isnan(p_adjusted):
        return "no test (an arm has no successful seed)"
    if p_adjusted > PROTOCOL.alpha:
        return f"no difference detectable at n = {n}"
    if family == "success":
        return f"tracks every ball {'more' if better else 'less'} often than the Gaussian"
    return f"{'more' if better else 'less'} precise than the Gaussian when both track"


def comparisons(arms: dict[str, list[dict]]) -> list[str]:
    """Each prior against the Gaussian, one row per prior, both families Holm-corrected."""
    threshold = PROTOCOL.primary_endpoint.threshold_px
    gaussian = arms["gaussian"]
    others = [m for m in arms if m not in ("gaussian", "supervised")]
    success = [success_p(arms[m], gaussian, threshold) for m in others]
    precision = [stats.mann_whitney(_precision(arms[m], threshold), _precision(gaussian, threshold)) for m in others]
    success_adj, precision_adj = stats.holm(success), stats.holm(precision)
    lines = ["| prior | every ball tracked: p (exact McNemar) | Holm | verdict | thresholds it holds at (px) "
             "| slot L2 when tracked: p (Mann–Whitney) | Holm | verdict |", "|---" * 8 + "|"]
    rate = {m: sum(_successes(arms[m], threshold).values()) / len(arms[m]) for m in arms}
    for i, method in enumerate(others):
        n = min(len(arms[method]), len(gaussian))
        words = _verdict_words("success", n, success_adj[i], rate[method] > rate["gaussian"])
        reach = _reach(arms[method], gaussian, words)
        median = {m: stats.bootstrap_median(_precision(arms[m], threshold))[0] for m in (method, "gaussian")}
        precise_words = _verdict_words("precision", n, precision_adj[i], median[method] < median["gaussian"])
        lines.append(f"| {method} | {success[i]:.3g} | {success_adj[i]:.3g} | {words} | {reach} "
                     f"| {_p(precision[i])} | {_p(precision_adj[i])} | {precise_words} |")
    return lines


def _p(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3g}"


def _reach(runs, gaussian, words: str) -> str:
    """The span of thresholds over which the unadjusted success test keeps the verdict's side of alpha."""
    significant = not words.startswith(("no difference", "no test"))

    def holds(threshold):
        return (success_p(runs, gaussian, threshold) <= PROTOCOL.alpha) == significant

    span = stats.threshold_range(holds, THRESHOLDS_PX, PROTOCOL.primary_endpoint.threshold_px)
    return "—" if span is None else f"{span[0]:g}–{span[1]:g}"


def study_section(arms: dict[str, list[dict]], preset: str) -> str:
    """The section for one preset's runs ({method: [run records with seed]})."""
    n_min = min(len(runs) for runs in arms.values())
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
        f"Mann–Whitney over the successful seeds (precision), each family Holm-corrected at α = {PROTOCOL.alpha:g}.",
        f"**Power.** With n = {n_min} seeds per arm, a drop in success rate from {baseline:.0%} is detected "
        f"with {PROTOCOL.power.target:.0%} power (Fisher, α = {PROTOCOL.alpha:g}, uncorrected) {detectable}."]
    if n_min < PROTOCOL.n_seeds:
        head.append(f"**{n_min} seeds per arm, not the registered {PROTOCOL.n_seeds}: the tests below cannot "
                    f"support a comparison at this n (a quick look); read them as anecdotes.**")
    table = ["| arm | n | every ball tracked | rate [95 % CI] | marginal failures | catastrophic failures "
             "| median slot L2 when tracked, px [95 % CI] |", "|---" * 7 + "|"]
    table += [arm_row(m, runs) for m, runs in arms.items()]
    body = "\n\n".join(head) + "\n\n" + "\n".join(table)
    if "gaussian" in arms and len(arms) > 1:
        body += "\n\nEach prior against the Gaussian (" + preset + " recipe):\n\n" + "\n".join(comparisons(arms))
    return body
