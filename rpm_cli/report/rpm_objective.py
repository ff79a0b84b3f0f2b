"""REPORT.md's section on objective=rpm against InfoNCE (configs/rpm_protocol.yaml, scripts/rpm_study.sh):
per arm the success count with a Wilson interval, catastrophic failures, the median slot L2 of its tracked
seeds and the median q_gain with bootstrap intervals; each RPM arm against InfoNCE with the same prior on the
same seeds (exact McNemar; Mann-Whitney on precision), q_gain against 0 (Wilcoxon signed-rank), Holm over
each family; the registered predictions, each marked held or not."""
import math
from pathlib import Path

from rpm_cli import stats
from rpm_cli.report.confidence import (PRECISE, TRACKS, _p, _precision, _verdict_words, arm_row, holm_per_family,
                                       registration_commit, success_p, success_rate, tracked)
from rpm_cli.report.records import reporting_runs
from rpm_cli.reproduction import PROTOCOL, RPM_PROTOCOL, STUDY_RECIPES, rpm_dir

THRESHOLD = PROTOCOL.primary_endpoint.threshold_px


def collect_rpm(root) -> dict[tuple[str, str], list[dict]]:
    """{(posterior, prior): [run records with seed]} of the study's evaluated runs on reporting seeds, in seed
    order."""
    cells = {}
    for posterior in RPM_PROTOCOL.posteriors:
        for prior in RPM_PROTOCOL.priors:
            if runs := reporting_runs(rpm_dir(root, posterior, prior)):
                cells[posterior, prior] = [runs[seed] for seed in sorted(runs)]
    return cells


def q_gain(run: dict) -> float:
    return run["final_train"]["q_gain"]


def _median(values, digits=3) -> str:
    median, low, high = stats.bootstrap_median(values)
    return "—" if math.isnan(median) else f"{median:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _comparisons(cells, infonce) -> list[dict]:
    rows = []
    for (posterior, prior), runs in cells.items():
        seeds = {r["seed"] for r in runs}
        reference = [r for r in infonce.get(prior, []) if r["seed"] in seeds]
        if not reference:
            continue
        precise = [_precision(x, THRESHOLD) for x in (runs, reference)]
        rows.append({"label": f"rpm ({posterior} Q), {prior}", "a": runs, "b": reference, "prior": prior,
                     "posterior": posterior, "success_p": success_p(runs, reference, THRESHOLD),
                     "precision_p": (stats.mann_whitney(*precise) if min(map(len, precise)) >= 3 else math.nan)})
    return holm_per_family(rows, ("success_p", "precision_p"))


def _gain_tests(cells) -> dict[tuple[str, str], tuple[float, float]]:
    """(p, Holm p) of q_gain against 0 for the arms with a learned posterior."""
    learned = {key: [q_gain(r) for r in runs] for key, runs in cells.items() if key[0] != "recognition"}
    raw = {key: stats.wilcoxon_signed_rank(gains, [0.0] * len(gains)) for key, gains in learned.items()}
    return {key: (p, adjusted) for (key, p), adjusted in zip(raw.items(), stats.holm(list(raw.values())))}


def _predictions(cells, rows, gains) -> list[str]:
    out = []
    for (posterior, prior), runs in cells.items():
        if prior == "linear":
            k, n = sum(tracked(r, THRESHOLD) for r in runs), len(runs)
            high = stats.wilson(k, n)[1]
            held = high < RPM_PROTOCOL.rescue_ceiling
            out.append(f"- linear not rescued by the {posterior} Q: {k}/{n}, Wilson upper bound {high:.0%} "
                       f"{'<' if held else '≥'} {RPM_PROTOCOL.rescue_ceiling:.0%}: "
                       f"**{'held' if held else 'failed'}**.")
    for row in rows:
        if row["prior"] != "linear":
            held = row["success_p_holm"] > RPM_PROTOCOL.alpha
            out.append(f"- {row['prior']}, {row['posterior']} Q: no difference in success rate from InfoNCE "
                       f"(Holm p = {row['success_p_holm']:.3g}): **{'held' if held else 'failed'}**.")
    for (posterior, prior), (p, adjusted) in gains.items():
        median = stats.bootstrap_median([q_gain(r) for r in cells[posterior, prior]])[0]
        held = 0 < median < RPM_PROTOCOL.small_gain_nats and adjusted <= RPM_PROTOCOL.alpha
        out.append(f"- q_gain of the {posterior} Q under {prior}: median {median:.4f} nats per pair, Wilcoxon "
                   f"p = {p:.3g} (Holm {adjusted:.3g}); positive and below {RPM_PROTOCOL.small_gain_nats:g}: "
                   f"**{'held' if held else 'failed'}**.")
    return out


def rpm_section(root, infonce: dict[str, list[dict]]) -> str | None:
    """The section, from the study's runs under root and the InfoNCE runs {prior: [records]} of the
    registered study; None when the study has no evaluated run."""
    cells = collect_rpm(Path(root))
    if not cells:
        return None
    n = RPM_PROTOCOL.n_seeds
    short = [f"{q} {p} ({len(r)})" for (q, p), r in cells.items() if len(r) < n]
    sigma = next(iter(cells.values()))[0]["config"]["objective"]["sigma_px"]
    lines = [f"Registered in {registration_commit('rpm_protocol.yaml')} (configs/rpm_protocol.yaml) before any "
             f"objective=rpm run on reporting seeds; `OUT={root} bash scripts/rpm_study.sh`, then `rpm report`. "
             f"objective=rpm's defaults as written (σ = {sigma:g} px, fixed), the registered study's "
             f"{RPM_PROTOCOL.preset} recipe (`{STUDY_RECIPES[RPM_PROTOCOL.preset]}`), "
             f"the first {n} reporting seeds; InfoNCE rows are the registered study's runs of the same prior on "
             f"the same seeds. Every ball tracked: each ball's matched error on the test video below "
             f"{THRESHOLD:g} px; q_gain: the last epoch's ELBO under the learned Q minus under Eq. 14's, nats per "
             f"pair (0 by construction for the recognition Q)."
             + (f" **Incomplete**: {', '.join(short)} of {n} seeds." if short else ""), "",
             "| arm | n | every ball tracked | rate [Wilson 95 %] | marginal failures | catastrophic "
             "| median slot L2 when tracked, px [bootstrap 95 %] | median q_gain [bootstrap 95 %] |",
             "|---|---|---|---|---|---|---|---|"]
    for prior in RPM_PROTOCOL.priors:
        seeds = {r["seed"] for (q, p), runs in cells.items() if p == prior for r in runs}
        reference = [r for r in infonce.get(prior, []) if r["seed"] in seeds]
        arms = [(f"InfoNCE, {prior}", reference, None)] if reference else []
        arms += [(f"rpm ({q} Q), {prior}", cells[q, p], [q_gain(r) for r in cells[q, p]])
                 for q in RPM_PROTOCOL.posteriors for p in [prior] if (q, p) in cells]
        lines += [arm_row(name, runs) + f" {'—' if gains is None else _median(gains, 4)} |"
                  for name, runs, gains in arms]
    rows = _comparisons(cells, infonce)
    lines += ["", "| comparison (against InfoNCE, same prior and seeds) | every ball tracked: p (exact McNemar) "
              "| Holm | verdict | slot L2 when tracked: p (Mann–Whitney) | Holm | verdict |", "|---" * 7 + "|"]
    for row in rows:
        paired = len({r["seed"] for r in row["a"]} & {r["seed"] for r in row["b"]})
        words = _verdict_words(paired, row["success_p_holm"], success_rate(row["a"], THRESHOLD) > success_rate(row["b"], THRESHOLD), TRACKS, "InfoNCE")
        medians = [stats.bootstrap_median(_precision(x, THRESHOLD))[0] for x in (row["a"], row["b"])]
        precise = ("no test (fewer than 3 tracked seeds in an arm)" if math.isnan(row["precision_p_holm"]) else
                   _verdict_words(paired, row["precision_p_holm"], medians[0] < medians[1], PRECISE, "InfoNCE"))
        lines.append(f"| {row['label']} | {row['success_p']:.3g} | {row['success_p_holm']:.3g} | {words} "
                     f"| {_p(row['precision_p'])} | {_p(row['precision_p_holm'])} | {precise} |")
    baseline = PROTOCOL.power.baseline_rate
    drop = stats.smallest_detectable_drop(baseline, n, RPM_PROTOCOL.alpha, PROTOCOL.power.target)
    lines += ["", f"Power: at n = {n} seeds per arm, a drop in success rate from {baseline:.0%} is detected with "
              f"{PROTOCOL.power.target:.0%} power only when it is at least {drop:.0%} (Fisher's test at "
              f"α = {RPM_PROTOCOL.alpha:g}, a conservative stand-in for the paired test): \"no difference "
              f"detectable\" here rules out only large effects.",
              "", "Registered predictions:", *_predictions(cells, rows, _gain_tests(cells))]
    return "\n".join(lines)

