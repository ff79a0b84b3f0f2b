"""RECIPE.md, the report on the default recipe's robustness (configs/recipe_protocol.yaml, scripts/recipe_study.sh):
per prior and recipe the success count on the validation video of the tuning seeds with a Wilson interval and
catastrophic failures; each candidate against the baseline on the same seeds (exact McNemar), pooled over the
selection priors; how often the conditional candidate fired, and that where it did not its runs are the
baseline's; a picture of map health over training (recipe_health.png). Its own file, written by `rpm report`
and by `python -m rpm_cli.report.recipe ROOT` (a machine that holds the study's runs but not the headline's)."""
import argparse
import json
from pathlib import Path

import numpy as np

from rpm_cli import stats
from rpm_cli.figures.health import draw_failure_maps, draw_health, draw_paired_worst
from rpm_cli.layout import METRICS
from rpm_cli.records import is_evaluated, run_record
from rpm_cli.recipe_study import (CONFIRMATIONS, RECIPE_PROTOCOL, RECIPE_SEEDS, against, candidates,
                                  confirmation_dir, recipe_dir, study_priors)
from rpm_cli.report.confidence import registration_commit, worst_ball_px

P = RECIPE_PROTOCOL
BASELINE = P.baseline


def _record(run_dir: Path) -> dict | None:
    if not (run_dir / "evaluation.json").exists() or not is_evaluated(run_dir):
        return None
    lines = [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines() if line]
    return {**run_record(run_dir), "metrics": lines, "fired": any("reseeded_maps" in m for m in lines),
            "path": run_dir}


def collect_recipes(root) -> dict[str, dict[str, dict[int, dict]]]:
    """{candidate: {prior: {seed: record}}} of the study's evaluated runs on its seeds. The baseline's missing
    seeds are filled from a conditional candidate's run that never fired there (the same run, bit for bit),
    marked `borrowed`."""
    found = {}
    for candidate in candidates():
        for prior in study_priors():
            runs = {s: r for s in RECIPE_SEEDS if (r := _record(recipe_dir(root, candidate, prior) / f"seed-{s}"))}
            if runs:
                found.setdefault(candidate, {})[prior] = runs
    for conditional in P.conditional:
        for prior, runs in found.get(conditional, {}).items():
            own = found.setdefault(BASELINE, {}).setdefault(prior, {})
            for seed, run in runs.items():
                if seed not in own and not run["fired"]:
                    own[seed] = {**run, "borrowed": True}
    return found


def worst_px(run: dict, video: str = P.video) -> float:
    return worst_ball_px(run, video)


def tracked(run: dict, video: str = P.video) -> bool:
    return worst_px(run, video) < P.threshold_px


def _rate(runs: list[dict]) -> str:
    if not runs:
        return "— | — | —"
    k, n = sum(map(tracked, runs)), len(runs)
    low, high = stats.wilson(k, n)
    catastrophic = sum(worst_px(r) >= P.catastrophic_px for r in runs)
    return f"{k}/{n} | {k / n:.0%} [{low:.0%}, {high:.0%}] | {catastrophic}"


def _paired(a: dict[int, dict], b: dict[int, dict]) -> tuple[int, int, int, float]:
    """(shared seeds, seeds only a tracks, seeds only b tracks, exact McNemar p)."""
    shared = sorted(a.keys() & b.keys())
    only_a = sum(tracked(a[s]) and not tracked(b[s]) for s in shared)
    only_b = sum(tracked(b[s]) and not tracked(a[s]) for s in shared)
    return len(shared), only_a, only_b, stats.mcnemar_exact(only_a, only_b)


def _identity_check(found) -> str:
    """Where both recipes ran a seed themselves and the conditional candidate never fired, are the evaluations
    the same numbers?"""
    same = total = 0
    for conditional in P.conditional:
        for prior, runs in found.get(conditional, {}).items():
            for seed, run in runs.items():
                base = found.get(BASELINE, {}).get(prior, {}).get(seed)
                if base is not None and not base.get("borrowed") and not run["fired"]:
                    total += 1
                    same += all(run[v] == base[v] for v in ("val", "test"))
    if not total:
        return ""
    return (f" Where both ran a seed themselves and no map was re-seeded, {same} of {total} runs have identical "
            f"validation and test scores, which is why the baseline runs only where the candidate fired.")


def _first_check(run: dict) -> float | None:
    """The least concentrated map when the first re-seed check reads it (the chosen start's last epoch): up to
    there a conditional candidate's run is the baseline's."""
    lines = [m for m in run["metrics"] if "map_concentration" in m]
    if not lines:
        return None
    trainer = run["config"]["trainer"]
    at = trainer["restart_epochs"] if trainer["restarts"] > 1 else 1
    return next((min(m["map_concentration"]) for m in lines if m["epoch"] == at), None)


def _what_shows_it(found) -> list[str]:
    """Per prior: the first check's least concentrated map on the seeds where the baseline failed
    catastrophically, against the lowest on the seeds where it tracked every ball (read from a conditional
    candidate's runs, identical to the baseline's up to that check)."""
    out = []
    for prior in study_priors():
        base = found.get(BASELINE, {}).get(prior, {})
        first = {}
        for conditional in P.conditional:
            for seed, run in found.get(conditional, {}).get(prior, {}).items():
                if (value := _first_check(run)) is not None:
                    first.setdefault(seed, value)
        bad = sorted(first[s] for s in base.keys() & first.keys() if worst_px(base[s]) >= P.catastrophic_px)
        good = sorted(first[s] for s in base.keys() & first.keys() if tracked(base[s]))
        if good:
            out.append(f"- {prior}: catastrophic baseline seeds {', '.join(f'{v:.3f}' for v in bad) or 'none'}; "
                       f"seeds where the baseline tracked every ball: lowest {good[0]:.3f} (n = {len(good)})")
    return out


def latest(found) -> str:
    """The candidate tried last among those with runs (the baseline when no candidate has any)."""
    return ([BASELINE] + [c for c in P.candidates if c in found])[-1]


def _failure_pairs(found, most: int = 4) -> list[tuple[str, Path]]:
    """(label, run dir) of the baseline's catastrophic runs (its own, not borrowed) and the last candidate's
    run of the same prior and seed, at most `most` pairs."""
    pairs = []
    for prior in study_priors():
        base, new = found.get(BASELINE, {}).get(prior, {}), found.get(latest(found), {}).get(prior, {})
        for seed in sorted(base.keys() & new.keys()):
            if worst_px(base[seed]) >= P.catastrophic_px and not base[seed].get("borrowed") and len(pairs) < 2 * most:
                pairs += [(f"{prior} seed {seed}, {c}: worst ball {worst_px(r[seed]):.1f} px", r[seed]["path"])
                          for c, r in ((BASELINE, base), (latest(found), new))]
    return pairs


def _confirmation(root: Path, found) -> list[str]:
    """Each frozen default on its fresh confirmation seeds (test video) against its rate on the tuning seeds."""
    prior, lines = P.target.prior, []
    for recipe, seeds in CONFIRMATIONS.items():
        runs = [r for s in seeds if (r := _record(confirmation_dir(root, recipe, prior) / f"seed-{s}"))]
        tuning = list(found.get(recipe, {}).get(prior, {}).values())
        if not runs or not tuning:
            continue
        k, n = sum(tracked(r, "test") for r in runs), len(runs)
        k0, n0 = sum(map(tracked, tuning)), len(tuning)
        (low, high), (low0, high0) = stats.wilson(k, n), stats.wilson(k0, n0)
        catastrophic = sum(worst_px(r, "test") >= P.catastrophic_px for r in runs)
        holds = low0 <= k / n <= high0
        lines += ["", f"**Confirmed once**, after `{recipe}` was frozen in `configs/trainer/tuned.yaml` "
                  f"({P.candidates[recipe].overrides}): `rpm train prior={prior}` on the fresh reporting seeds "
                  f"{seeds[0]}–{seeds[-1]}, test video: every ball tracked on {k}/{n}, {k / n:.0%} [{low:.0%}, "
                  f"{high:.0%}] ({catastrophic} catastrophic; {sum(r['fired'] for r in runs)} runs re-seeded a map), "
                  f"against {k0}/{n0}, {k0 / n0:.0%} [{low0:.0%}, {high0:.0%}] on the tuning seeds' validation "
                  f"video: {'within' if holds else 'outside'} the tuning interval (Fisher p = "
                  f"{stats.fisher(k, n, k0, n0):.3g})."]
    return lines


def recipe_section(root) -> str | None:
    root = Path(root)
    found = collect_recipes(root)
    if not found:
        return None
    short = [f"{c} {p} ({len(runs)})" for c, priors in found.items() for p, runs in priors.items()
             if len(runs) < len(RECIPE_SEEDS)]
    lines = [f"Protocol in configs/recipe_protocol.yaml (first committed in {registration_commit('recipe_protocol.yaml')}; "
             f"candidates were added in the order tried, each after the previous one's runs were seen); "
             f"`OUT={root} bash scripts/recipe_study.sh`, then `rpm report`. Tuning seeds "
             f"{RECIPE_SEEDS[0]}–{RECIPE_SEEDS[-1]} only, each run scored on the **{P.video}idation** video; "
             f"every ball tracked: each ball's matched error below {P.threshold_px:g} px; catastrophic: some ball's "
             f"error at least {P.catastrophic_px:g} px (a map on no ball). The criterion is the success rate pooled "
             f"over {', '.join(P.selection_priors)}; {', '.join(P.reported_priors)} are reported under the same "
             f"recipes, not selected on. Baseline `{BASELINE}`: trainer=tuned before any remedy."
             + _identity_check(found)
             + (f" **Incomplete**: {', '.join(short)} of {len(RECIPE_SEEDS)} seeds." if short else ""), ""]
    header = "| prior | recipe | n | every ball tracked | rate [Wilson 95 %] | catastrophic | re-seeded runs " \
             "| against the baseline (or the recipe named): only it tracks / only the other / p (exact McNemar) |"
    lines += [header, "|---" * 8 + "|"]
    pooled = {c: ({}, {}) for c in found if c != BASELINE}
    for prior in study_priors():
        for candidate in candidates():
            base = found.get(BASELINE if candidate == BASELINE else against(candidate), {}).get(prior, {})
            runs = found.get(candidate, {}).get(prior, {})
            if not runs:
                continue
            if candidate == BASELINE:
                borrowed = sum(bool(r.get("borrowed")) for r in runs.values())
                note = f"— ({borrowed} read from a run that never re-seeded)" if borrowed else "—"
                lines.append(f"| {prior} | {candidate} | {len(runs)} | {_rate(list(runs.values()))} | {note} | |")
                continue
            n, only_new, only_base, p = _paired(runs, base)
            fired_runs = sum(r["fired"] for r in runs.values())
            versus = f"{only_new} / {only_base} / {p:.3g} (n = {n})" if n else "no shared seeds"
            if against(candidate) != BASELINE:
                versus = f"against {against(candidate)}: {versus}"
            lines.append(f"| {prior} | {candidate} | {len(runs)} | {_rate(list(runs.values()))} | {fired_runs} "
                         f"| {versus} |")
            if prior in P.selection_priors:
                for seed in runs.keys() & base.keys():
                    pooled[candidate][0][prior, seed] = runs[seed]
                    pooled[candidate][1][prior, seed] = base[seed]
    lines += ["", "Pooled over the selection priors (the criterion), each candidate against the baseline (or the "
              "recipe it was built on) on the same prior and seed; and how far off the worst ball is, seed by seed:",
              ""]
    for candidate, (new, base) in pooled.items():
        if new:
            n, only_new, only_base, p = _paired(new, base)
            other = against(candidate)
            priors = [p for p in P.selection_priors if any(key[0] == p for key in new)]
            keys = sorted(new)
            worst_new, worst_base = ([worst_px(runs[key]) for key in keys] for runs in (new, base))
            lines.append(f"- `{candidate}` ({P.candidates[candidate].overrides}, {P.candidates[candidate].epochs_ratio:g}× "
                         f"the baseline's epochs; {', '.join(priors)}): {_rate(list(new.values())).split(' | ')[0]} against "
                         f"{_rate(list(base.values())).split(' | ')[0]} for `{other}`; it alone tracks on {only_new}, "
                         f"`{other}` alone on {only_base} (exact McNemar p = {p:.3g}, n = {n}); worst ball, median "
                         f"{np.median(worst_new):.2f} px against {np.median(worst_base):.2f} px, lower on "
                         f"{sum(a < b for a, b in zip(worst_new, worst_base))} of {n} (Wilcoxon signed-rank p = "
                         f"{stats.wilcoxon_signed_rank(worst_new, worst_base):.3g}).")
    lines += _confirmation(root, found)
    if shows := _what_shows_it(found):
        lines += ["", "What shows a failure without labels: the least concentrated map (its share of mass within a "
                  "ball diameter of its centre, on 64 training frames; a uniform map scores 0.049 at paper size) "
                  "when the chosen start's last epoch ends, where the first check reads it:", "", *shows]
    last = latest(found)
    if last != BASELINE and last in P.candidates:
        other = against(last)
        points = {prior: [(worst_px(found[other][prior][s]), worst_px(runs[s]))
                          for s in sorted(runs.keys() & found.get(other, {}).get(prior, {}).keys())]
                  for prior, runs in found[last].items() if prior in P.selection_priors}
        picture = draw_paired_worst(points, root / "figures" / "recipe_precision.png", P.threshold_px, (other, last))
        if picture is not None:
            lines += ["", f"Each seed's worst ball on the validation video under `{other}` (x) and `{last}` (y); below "
                      "the diagonal the candidate is closer:", "", f"![worst ball per seed]({picture.relative_to(root)})"]
    target = {c: {P.target.prior: priors[P.target.prior]} for c, priors in found.items() if P.target.prior in priors}
    if (picture := draw_health(target, root / "figures" / "recipe_health.png", tracked)) is not None:
        lines += ["", f"The {P.target.prior} runs' least concentrated map at each epoch where it was measured, runs "
                  "that tracked every ball (blue) and those that did not (red):", "",
                  f"![map health over training]({picture.relative_to(root)})"]
    if (picture := draw_failure_maps(_failure_pairs(found), root / "figures" / "recipe_maps.png")) is not None:
        lines += ["", f"The baseline's catastrophic runs (left) and the `{latest(found)}` candidate's run of the same "
                  "seed (right), first validation frame:",
                  "", f"![maps of failing runs]({picture.relative_to(root)})"]
    return "\n".join(lines)


RECIPE_REPORT = "RECIPE.md"


def write_recipe_report(root) -> Path | None:
    """ROOT/RECIPE.md from the study's runs under ROOT; None (nothing written) when there are none."""
    from rpm_cli.atomic import write_text

    section = recipe_section(root)
    if section is None:
        return None
    path = Path(root) / RECIPE_REPORT
    write_text(path, f"# A default that works on every seed: the recipe study\n\nWritten by `python -m "
                     f"rpm_cli.report.recipe {root}` (and by `rpm report`).\n\n{section}\n")
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rpm_cli.report.recipe",
                                     description="write ROOT/RECIPE.md from the recipe study's runs")
    parser.add_argument("root", type=Path)
    args = parser.parse_args(argv)
    path = write_recipe_report(args.root)
    print(path if path else f"no recipe-study runs under {args.root}")


if __name__ == "__main__":
    main()
