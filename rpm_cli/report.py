"""`rpm report DIR`: write DIR/REPORT.md for a `make reproduce` directory.

Every fact in the report (video sizes, seeds, number of latents, batch size, the priors' parameters) is read
from the runs' own resolved configs and results; the layout comes from rpm_cli.reproduction.
"""
import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

from rpm_cli import CONFIG_DIR
from rpm_cli.atomic import write_text
from rpm_cli.layout import RUNTIME_KEYS
from rpm_cli.errors import UserError, reported
from rpm_cli.readout import TRACKED_PX
from rpm_cli.reproduction import FIG1_METHODS, PRESETS, TUNED_SHIFT, TUNING_SEEDS, method_override, parse_run_dir
from rpm_cli.layout import CHECKPOINT, STARTS
from rpm_cli.runs import load_checkpoint, read_metrics, upgrade_config

METRICS = (("readout_l2_px", "joint L2"), ("slot_l2_px", "slot L2"))
# The claim, made testable (the paper gives no numbers): thresholds stated in the report itself.
SLOT_TARGET_PX = 5.0         # Gaussian: each map tracks one ball to within 5 px on average
JOINT_FACTOR = 2.0           # Gaussian joint readout no worse than 2x the supervised baseline
FAIL_FRACTION = 0.5          # "fails": slot L2 at least half the random-init encoder's (no per-ball slots learned)
TUNING_ORDER = ("adam", "sgd-sum", "fixed-theta", "map-bias", "seeds", "restarts")  # scripts/tune.sh's order
NOT_LEARNED = {"epoch", "loss", "seconds", "frames_per_s", "infonce_estimate", "negatives"}


def collect(root: Path) -> dict:
    """{preset: {method: [run record]}} for every evaluated run under the reproduction layout."""
    found = {}
    for evaluation in sorted(root.glob("*/*/seed-*/evaluation.json")):
        run_dir = evaluation.parent
        preset, method, seed = parse_run_dir(run_dir)
        result = json.loads(evaluation.read_text())
        if "test" not in result:
            continue  # evaluated before the validation/test split: `rpm evaluate force=true` updates it
        result["config"] = upgrade_config(load_checkpoint(run_dir / CHECKPOINT)["config"])
        result["train_seconds"] = sum(m["seconds"] for m in read_metrics(run_dir)) + discarded_start_seconds(run_dir)
        result["seed"] = seed
        found.setdefault(preset, {}).setdefault(method, []).append(result)
    for methods in found.values():
        for runs in methods.values():
            runs.sort(key=lambda r: r["seed"])
    return found


def discarded_start_seconds(run_dir: Path) -> float:
    """Training time of the starts a run tried and dropped (trainer.restarts > 1); 0 without restarts."""
    path = run_dir / STARTS
    if not path.exists():
        return 0.0
    record = json.loads(path.read_text())
    return sum(s["seconds"] for s in record["starts"] if s["start"] != record["chosen"])


def stat(values) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


def fmt(values, digits: int = 2) -> str:
    mean, std = stat(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def mean_of(rows, key) -> float:
    return stat([r[key] for r in rows])[0]


def works(rows) -> bool:
    """A setting works when its mean validation slot L2 is below the target."""
    return mean_of(rows, "slot_l2_px") < SLOT_TARGET_PX


def selected(groups: dict):
    """What a search over these settings selects: the lowest mean validation slot L2 (the test video is not read)."""
    return min(groups, key=lambda key: mean_of(groups[key], "slot_l2_px"))


def test_scores(runs, key, control=None) -> list[float]:
    return [(r["test"][control] if control else r["test"])[key] for r in runs]


def results_table(found: dict) -> str:
    presets = list(found)
    header = "| method | " + " | ".join(f"{p}: {name} (px)" for p in presets for _, name in METRICS) + " |"
    lines = [header, "|---" * (1 + 2 * len(presets)) + "|"]
    for method in FIG1_METHODS:
        cells = []
        for p in presets:
            runs = found[p].get(method, [])
            cells += [f"{fmt(test_scores(runs, k))} (n={len(runs)})" if runs else "—" for k, _ in METRICS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    for control in ("random_init", "chance"):
        cells = []
        for p in presets:
            runs = [r for m in FIG1_METHODS for r in found[p].get(m, [])]
            cells += [fmt(test_scores(runs, k, control)) if runs else "—" for k, _ in METRICS]
        lines.append(f"| {control.replace('_', '-')} control | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(found: dict) -> list[str]:
    out = []
    for preset, methods in found.items():
        if not all(methods.get(m) for m in FIG1_METHODS):
            out.append(f"- **{preset}**: incomplete (needs supervised, gaussian and linear runs).")
            continue
        g_slot, g_joint = stat(test_scores(methods["gaussian"], "slot_l2_px"))[0], stat(
            test_scores(methods["gaussian"], "readout_l2_px"))[0]
        s_joint, s_slot = stat(test_scores(methods["supervised"], "readout_l2_px"))[0], stat(
            test_scores(methods["supervised"], "slot_l2_px"))[0]
        l_slot, l_joint = stat(test_scores(methods["linear"], "slot_l2_px"))[0], stat(
            test_scores(methods["linear"], "readout_l2_px"))[0]
        r_slot = stat([x for m in FIG1_METHODS for x in test_scores(methods[m], "slot_l2_px", "random_init")])[0]
        joint_ok = g_joint <= JOINT_FACTOR * s_joint
        good_seeds = [r["seed"] for r in methods["gaussian"] if r["test"]["slot_l2_px"] < SLOT_TARGET_PX]
        n = len(methods["gaussian"])
        if g_slot < SLOT_TARGET_PX and joint_ok:
            gaussian_verdict = "reproduced"
        elif good_seeds and joint_ok:
            gaussian_verdict = (f"reproduced in {len(good_seeds)} of {n} seeds only "
                                f"(seed {', '.join(map(str, good_seeds))}), not on average")
        else:
            gaussian_verdict = "not reproduced"
        tracked = ", ".join(str(r["test"]["balls_tracked"]) for r in methods["gaussian"])
        n_balls = methods["gaussian"][0]["config"]["data"]["n_balls"]
        out.append(
            f"- **{preset}: Gaussian f_θ recovers the ball positions almost as well as supervision: "
            f"{gaussian_verdict}.** Balls tracked to < {TRACKED_PX:g} px per seed (of {n_balls}): {tracked}. "
            f"Gaussian slot L2 {g_slot:.2f} px (target < {SLOT_TARGET_PX:g}; random-init encoder {r_slot:.2f}, "
            f"supervised {s_slot:.2f}); joint readout {g_joint:.2f} px vs supervised {s_joint:.2f} px "
            f"(target ≤ {JOINT_FACTOR:g}×).")
        linear_fails = l_slot >= FAIL_FRACTION * r_slot
        out.append(
            f"- **{preset}: the linear f_θ fails: {'reproduced' if linear_fails else 'not reproduced'}.** "
            f"Linear slot L2 {l_slot:.2f} px against the random-init encoder's {r_slot:.2f} px (fails = at least "
            f"{FAIL_FRACTION:g}× it) and the Gaussian's {g_slot:.2f} px ({l_slot / g_slot:.1f}× the Gaussian's); "
            f"its joint readout is {l_joint:.2f} px"
            + (" — on the paper's joint metric alone the linear critic does not look like a failure."
               if l_joint <= JOINT_FACTOR * s_joint else "."))
    return out


def learned_parameters(runs) -> str:
    keys = [k for k in runs[0]["final_train"] if k not in NOT_LEARNED and isinstance(runs[0]["final_train"][k], float)]
    if not keys:
        return "—"
    return "; ".join(f"{k} {fmt([r['final_train'][k] for r in runs])}" for k in keys[:4]) + (
        f"; +{len(keys) - 4} more" if len(keys) > 4 else "")


def priors_section(found: dict, preset: str) -> str:
    methods = {m: runs for m, runs in found.get(preset, {}).items() if m != "supervised"}
    if not methods:
        return f"No prior runs under `{preset}/`."
    lines = ["| prior | joint L2 (px) | slot L2 (px) | balls tracked | retrieval top-1 | top-1 without the base frame "
             "| MRR without the base frame | I_N, N=B−1 | final loss | learned parameters |", "|---" * 10 + "|"]
    for method, runs in sorted(methods.items(), key=lambda mr: stat(test_scores(mr[1], "slot_l2_px"))[0]):
        tracked = "/".join(str(r["test"]["balls_tracked"]) for r in runs)
        lines.append(
            f"| {method} | {fmt(test_scores(runs, 'readout_l2_px'))} | {fmt(test_scores(runs, 'slot_l2_px'))} "
            f"| {tracked} | {fmt(test_scores(runs, 'retrieval_top1'))} "
            f"| {fmt(test_scores(runs, 'retrieval_top1_without_base'))} | {fmt(test_scores(runs, 'retrieval_mrr_without_base'))} "
            f"| {fmt(test_scores(runs, 'infonce_estimate_batch'))} | {fmt([r['final_train']['loss'] for r in runs], 3)} "
            f"| {learned_parameters(runs)} |")
    every = [r for runs in found[preset].values() for r in runs]
    lines.append(f"| random-init control | {fmt(test_scores(every, 'readout_l2_px', 'random_init'))} "
                 f"| {fmt(test_scores(every, 'slot_l2_px', 'random_init'))} | | | | | | | |")
    lines.append(f"| chance control | {fmt(test_scores(every, 'readout_l2_px', 'chance'))} "
                 f"| {fmt(test_scores(every, 'slot_l2_px', 'chance'))} | | | | | | | |")
    return "\n".join(lines)


def prior_verdicts(found: dict, preset: str) -> list[str]:
    methods = {m: runs for m, runs in found.get(preset, {}).items() if m != "supervised"}
    if "gaussian" not in methods:
        return []
    g_slot = stat(test_scores(methods["gaussian"], "slot_l2_px"))
    out = []
    for method, runs in sorted(methods.items()):
        if method == "gaussian":
            continue
        slot = stat(test_scores(runs, "slot_l2_px"))
        n_balls = runs[0]["config"]["data"]["n_balls"]
        all_tracked = sum(r["test"]["balls_tracked"] == n_balls for r in runs)
        # Better or worse only when the means differ by more than both spreads together.
        if slot[0] + slot[1] + g_slot[1] < g_slot[0]:
            word = "beats the Gaussian"
        elif slot[0] - slot[1] - g_slot[1] > g_slot[0]:
            word = "is worse than the Gaussian"
        else:
            word = "is indistinguishable from the Gaussian at this number of seeds"
        out.append(f"- **{method}** {word}: slot L2 {slot[0]:.2f} ± {slot[1]:.2f} px against "
                   f"{g_slot[0]:.2f} ± {g_slot[1]:.2f} px; all {n_balls} balls tracked on {all_tracked} of "
                   f"{len(runs)} seeds.")
    return out


def sweeps_under(folder: Path, order=None) -> dict[str, list[dict]]:
    """Each sweep in folder that has finished runs, by name, with their rows (from the runs or the summary)."""
    from rpm_cli.figures.sweep import sweep_rows

    return {p.name: rows for p in sorted(folder.glob("*"), key=order) if p.is_dir() and (rows := sweep_rows(p))}


def tuning_section(root: Path) -> str:
    """The sweeps under root/tuning/ (written by scripts/tune.sh): one row per setting, seeds pooled."""
    def order(sweep: Path):
        return TUNING_ORDER.index(sweep.name) if sweep.name in TUNING_ORDER else len(TUNING_ORDER), sweep.name

    sweeps = sweeps_under(root / "tuning", order)
    if not sweeps:
        return "No tuning sweep found under `tuning/` (run `scripts/tune.sh`)."
    lines = ["| sweep | overrides | seeds | epochs | final loss | θ (px) | val joint L2 | val slot L2 "
             f"| seeds with all balls tracked (< {TRACKED_PX:g} px, val) | random-init val slot L2 | best in its sweep |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, runs in sweeps.items():
        settings = {}
        for row in runs:
            settings.setdefault(row["setting"], []).append(row)
        best = selected(settings) if len(settings) > 1 else None
        for overrides, rows in settings.items():
            thetas = [r["final_lengthscale_px"] for r in rows if isinstance(r["final_lengthscale_px"], float)]
            tracked = sum(r["balls_tracked"] == r["n_balls"] for r in rows)
            lines.append(
                f"| {name} | `{overrides}` | {', '.join(str(r['seed']) for r in rows)} | {rows[0]['epochs']} "
                f"| {fmt([r['final_loss'] for r in rows])} | {fmt(thetas) if thetas else '—'} "
                f"| {fmt([r['readout_l2_px'] for r in rows])} | {fmt([r['slot_l2_px'] for r in rows])} "
                f"| {tracked} of {len(rows)} | {fmt([r['random_init_slot_l2_px'] for r in rows])} "
                f"| {'**yes**' if overrides == best else ''} |")
    return "\n".join(lines)


def per_run_table(found: dict) -> str:
    lines = [f"| preset | method | seed | test joint L2 | test slot L2 | val slot L2 | balls tracked (test, < {TRACKED_PX:g} px) "
             "| matched slot errors (px) | random-init slot L2 | final loss | θ (px) | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for preset, methods in found.items():
        for method, runs in methods.items():
            for r in runs:
                final, test = r["final_train"], r["test"]
                theta = f"{final['lengthscale_px']:.2f}" if "lengthscale_px" in final else "—"
                matched = ", ".join(f"{m:.1f}" for m in test["slot_matched_px"])
                lines.append(f"| {preset} | {method} | {r['seed']} | {test['readout_l2_px']:.2f} | {test['slot_l2_px']:.2f} "
                             f"| {r['val']['slot_l2_px']:.2f} | {test['balls_tracked']} | {matched} "
                             f"| {test['random_init']['slot_l2_px']:.2f} | {final['loss']:.4f} | {theta} "
                             f"| {r['train_seconds']:.0f} |")
    return "\n".join(lines)


def protocol(found: dict) -> str:
    runs = [r for methods in found.values() for rs in methods.values() for r in rs]
    data = runs[0]["config"]["data"]
    seeds = sorted({r["seed"] for r in runs})
    overlap = sorted(set(seeds) & set(TUNING_SEEDS))
    return (f"Three videos, three roles, all {data['image_size']}×{data['image_size']} RGB with {data['n_balls']} "
            f"balls of diameter {data['ball_diameter']:g} px ({2 * runs[0]['config']['encoder']['n_maps']} latents): "
            f"a training video of {data['n_frames']} frames per run (its seed is the run's seed), a **validation** "
            f"video (seed {data['val_seed']}, {data['val_frames']} frames) that everything that selects reads "
            f"(tuning, sweepers' objective), and a **test** video (seed {data['test_seed']}, {data['test_frames']} "
            f"frames) that is only reported. Reporting seeds: {', '.join(map(str, seeds))}. Tuning seeds "
            f"(`scripts/tune.sh`): {', '.join(map(str, TUNING_SEEDS))}. "
            + (f"**Overlap: {overlap}.**" if overlap else "The two sets are disjoint.")
            + " Restarts choose a start by its training loss alone (no labels, no held-out video).")


def theory_summary(root: Path) -> str:
    path = root / "theory" / "theory.json"
    if not path.exists():
        return "`rpm theory` was not run."
    checks = json.loads(path.read_text())["checks"]
    status = ["skip" if c["passed"] is None else "pass" if c["passed"] else "fail" for c in checks]
    count = {word: status.count(word) for word in ("pass", "fail", "skip")}
    failed = [c["name"] for c, s in zip(checks, status) if s == "fail"]
    return (f"`rpm theory` checks the paper's identities (Sec. 4, App. A–C) on a closed-form linear-Gaussian RPM, "
            f"closed form against Monte Carlo: {count['pass']} checks pass, {count['fail']} fail, {count['skip']} "
            f"skipped" + (f" (failed: {', '.join(failed)})" if failed else "")
            + ". Each claim in the paper's words with its numbers: [theory/THEORY.md](theory/THEORY.md).")


def write_report(root, wall_seconds: float | None = None, jobs: int | None = None,
                 figure_seconds: float | None = None, reused: int = 0) -> Path:
    root = Path(root)
    found = collect(root)
    if not found:
        raise UserError(f"no evaluated runs under {root}/<preset>/<method>/seed-*/ (run `make reproduce`)")
    runs = [r for methods in found.values() for rs in methods.values() for r in rs]
    threads = {r["config"]["trainer"]["threads"] for r in runs}
    wall = f"{wall_seconds / 60:.1f} min for the whole `make reproduce`" if wall_seconds else "not recorded"
    if figure_seconds:
        wall += f" (Fig. 1, drawn from the tuned runs, which go first, was ready after {figure_seconds / 60:.1f} min)"
    if reused:
        wall += f"; {reused} runs were already done by an earlier invocation and are not in that time"
    commands = "\n".join(f"rpm train {PRESETS[p]} {method_override(m)} seed=<seed> hydra.run.dir={root}/{p}/{m}/seed-<seed>"
                         for p in found for m in found[p])
    recipe_files = {"tuned": "trainer/tuned.yaml", "paper": "trainer/paper.yaml"}
    recipes = "\n\n".join(f"`configs/{recipe_files[p]}`:\n```yaml\n{(CONFIG_DIR / recipe_files[p]).read_text().strip()}\n```"
                          for p in found if p in recipe_files)
    figure_preset = "tuned" if "tuned" in found else next(iter(found))
    batch = runs[0]["config"]["trainer"]["batch_size"]
    priors_figure = root / "figures" / "priors.png"
    sections = [
        "# Reproducing Fig. 1 of \"InfoNCE is variational inference in a recognition parameterised model\"",
        f"Generated by `make reproduce` (`scripts/reproduce.sh`, then `rpm report {root}`); every number below was "
        "measured by rpm: the runs' by `make reproduce`, the tuning table's by `scripts/tune.sh`, the ablation, "
        "beyond-the-setting, lengthscale and open-choice tables' by `make ablations`. Machine: "
        f"{platform.machine()}, torch threads per run {sorted(threads)}, {jobs or '?'} runs in parallel. Wall time: {wall}; training took "
        f"{np.mean([r['train_seconds'] for r in runs]):.0f} s per run on average ({len(runs)} runs).",
        "## Protocol\n\n" + protocol(found),
        "## Results (test video, mean ± std over the reporting seeds)\n\nReadout fitted on the training video, "
        "scored on the test video. *Joint*: one affine map from all latents to all coordinates (the paper's "
        "Fig. 1C). *Slot*: each map's (x, y) fitted to one ball, maps matched to balls by least error: low only "
        "when each latent tracks one ball.\n\n" + results_table(found),
        f"## Verdicts\n\nThe paper gives no numbers; we call the claim reproduced when the Gaussian prior's slot L2 "
        f"is below {SLOT_TARGET_PX:g} px and its joint L2 within {JOINT_FACTOR:g}× the supervised baseline's, and "
        f"call the linear critic a failure when its slot L2 is at least {FAIL_FRACTION:g}× the random-init "
        f"encoder's. Means over seeds; the per-run table shows the spread.\n\n" + "\n".join(verdicts(found)),
        "## Figures\n\n" + ("![Fig. 1](figures/fig1.png)\n\nPanels A–E are also in `figures/fig1a.png` … "
                            "`fig1e.png` (and `.pdf`). In D and E the ring marks the base frame: it is itself one "
                            "of the candidates (the previous pair's next frame), and a Gaussian f_θ gives it the "
                            "highest P(z'|z), so the peak at the current position is expected, not an error."
                            if (root / "figures" / "fig1.png").exists() else "(no figures drawn)"),
        f"## Priors ({figure_preset} recipe, test video)\n\nEvery prior in `configs/prior/` trained with the same "
        f"recipe, video, encoder and seeds. Retrieval: the true next frame ranked among all test next frames by "
        f"f_θ (Eq. 34), ties counted against it; one candidate is the base frame itself (the previous pair's next "
        f"frame), which a prior peaking at z' = z ranks first, hence the column without it. I_N: Eq. 6 on random "
        f"batches of the training batch size (N = B − 1 negatives; at most log N = {np.log(batch - 1):.2f}).\n\n"
        + priors_section(found, figure_preset) + "\n\n" + "\n".join(prior_verdicts(found, figure_preset))
        + ("\n\n![P(z'|z) per prior](figures/priors.png)" if priors_figure.exists() else ""),
        "## Theory\n\n" + theory_summary(root),
        "## How the tuned recipe was found\n\nGaussian f_θ, full size, tuning seeds only, each run scored on the "
        "**validation** video (the test video is not read); `scripts/tune.sh` reruns every sweep (plots in "
        "`tuning/*/sweep_summary.png`). Within a sweep the setting with the lowest mean validation slot L2 is "
        "selected (*best in its sweep*); the last sweep compares whole recipes, and its winner is `trainer=tuned` "
        f"(initial shift {TUNED_SHIFT:g}).\n\n"
        + tuning_section(root),
        *ablation_sections(root),
        "## Every run\n\n" + per_run_table(found),
        "## Exact commands and configs\n\n```bash\n" + commands + "\nrpm evaluate run_dir=<run dir>\n```\n\n" + recipes,
    ]
    path = root / "REPORT.md"
    write_text(path, "\n\n".join(sections) + "\n")
    return path


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line and exit code 2, as everywhere in rpm."""

    def error(self, message):
        print(f"error: {message} (usage: {self.prog} DIR [--wall-seconds S] [--jobs N] [--figure-seconds S] "
              f"[--reused N]; {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def main(argv=None) -> int:
    parser = OneLineParser(prog="rpm report", description="write DIR/REPORT.md for a `make reproduce` dir")
    parser.add_argument("root", type=Path, help="the reproduction directory (e.g. outputs/reproduce)")
    parser.add_argument("--wall-seconds", type=float)
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--figure-seconds", type=float, help="when Fig. 1 was ready, from the start")
    parser.add_argument("--reused", type=int, default=0, help="runs an earlier invocation had already finished")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    with reported():
        try:
            report = write_report(args.root, args.wall_seconds, args.jobs, args.figure_seconds, args.reused)
        except OSError as exc:  # a dir that vanished while it was read (/proc), or one that cannot be read
            raise UserError(f"cannot read or write under {args.root}: {exc.strerror or exc} ({exc.filename})") from None
        print(report)
    return 0


# --- `make ablations`: tables read from the sweeps under <root>/ablations/<part>/<sweep>/ -------------------

RECIPE_CHANGES = {"adam": "Adam at lr 0.02", "shift": "last BatchNorm shift {shift:g}", "restarts": "best of 5 starts"}
CHOICES = {  # sweep suffix: (what the paper leaves open, rpm's choice, the alternative)
    "units": ("latent units f_θ sees", "image size = 1 (z in (0, 1))", "pixels; [-1, 1]"),
    "batchnorm": ("base and next frames in one BatchNorm batch", "one batch of 2B", "two batches of B"),
    "theta0": ("initial θ", "one ball diameter (32 px)", "8 px"),
    "sum": ("mean vs summed loss", "mean over the batch", "sum"),
    "shift": ("the last BatchNorm's initial shift", f"the recipe's (0 paper, {TUNED_SHIFT:g} tuned)",
              f"the other ({TUNED_SHIFT:g} / 0)"),
    "background": ("background colour", "black", "white"),
    "antialias": ("anti-aliased ball edges", "yes", "no"),
}


def _sweeps(root: Path, part: str) -> dict[str, list[dict]]:
    return sweeps_under(root / "ablations" / part)


def _cell(rows, key) -> str:
    return fmt([r[key] for r in rows]) if rows else "—"


def _earlier_recipe_note(sweeps: dict[str, list[dict]]) -> str:
    """Sweeps measured before the tuning's validation rerun moved trainer=tuned's shift say so (read from their rows)."""
    earlier = {name: sorted({float(r["map_bias_init"]) for r in rows} - {TUNED_SHIFT}) for name, rows in sweeps.items()}
    earlier = {name: shifts for name, shifts in earlier.items() if shifts}
    if not earlier:
        return ""
    shifts = sorted({s for values in earlier.values() for s in values})
    return (f"\n\n**Measured with the tuned recipe's earlier initial shift ({', '.join(f'{s:g}' for s in shifts)}): "
            f"{', '.join(f'`{name}`' for name in earlier)}; `trainer=tuned` now starts it at {TUNED_SHIFT:g}.** "
            f"To remeasure, delete those sweeps and run `make ablations`.")


def _all_tracked(rows, prefix="") -> str:
    return f"{sum(r[prefix + 'balls_tracked'] == r['n_balls'] for r in rows)} of {len(rows)}"


def recipe_section(root: Path) -> str | None:
    sweeps = _sweeps(root, "recipe")
    if not sweeps:
        return None
    lines = ["| prior | setting | seeds | val slot L2 (px) | val joint L2 (px) | seeds with every ball tracked |",
             "|---|---|---|---|---|---|"]
    sentences = []
    for prior in ("gaussian", "linear"):
        rows = {name.removeprefix(prior + "-"): r for name, r in sweeps.items() if name.startswith(prior + "-")}
        shifted = rows.get("paper+shift") or [{"map_bias_init": TUNED_SHIFT}]  # the shift those runs used
        changes = {**RECIPE_CHANGES, "shift": RECIPE_CHANGES["shift"].format(shift=float(shifted[0]["map_bias_init"]))}
        for setting, rs in rows.items():
            lines.append(f"| {prior} | {setting} | {', '.join(str(r['seed']) for r in rs)} | {_cell(rs, 'slot_l2_px')} "
                         f"| {_cell(rs, 'readout_l2_px')} | {_all_tracked(rs)} |")

        def setting_works(setting):
            return works(rows[setting]) if rows.get(setting) else None
        if setting_works("tuned") is False:
            sentences.append(f"- {prior}: the tuned recipe itself does not work with this prior, so no change is "
                             f"necessary for it; " + ("some single change from Appendix D works: " + ", ".join(
                                 w for c, w in changes.items() if setting_works(f"paper+{c}")) if any(
                                 setting_works(f"paper+{c}") for c in changes) else "no single change from Appendix D works either") + ".")
            continue
        for change, words in changes.items():
            alone, without = setting_works(f"paper+{change}"), setting_works(f"tuned-{change}")
            if alone is None or without is None:
                continue
            sentences.append(f"- {prior}: {words} is {'sufficient' if alone else 'not sufficient'} on its own "
                             f"and {'not necessary' if without else 'necessary'} in the tuned recipe.")
    return ("## Ablations of the recipe (validation video, tuning seeds)\n\nOne change at a time, from Appendix D "
            "(`paper+change`) and from the tuned recipe (`tuned-change`). A setting *works* when its mean validation "
            f"slot L2 is below {SLOT_TARGET_PX:g} px.\n\n" + "\n".join(lines) + "\n\n" + "\n".join(sentences)
            + _earlier_recipe_note({name: rs for name, rs in sweeps.items()
                                    if name.endswith(("-tuned", "-tuned-adam", "-tuned-restarts", "+shift"))}))


def beyond_section(root: Path) -> str | None:
    sweeps = _sweeps(root, "beyond")
    if not sweeps:
        return None
    groups = {}
    for rows in sweeps.values():
        for r in rows:
            setting = f"{r['n_balls']} balls, {r.get('override:data.image_size', '256')}² frames"
            groups.setdefault(setting, {}).setdefault(r["prior"], []).append(r)
    lines = ["| setting | Gaussian test slot L2 | every ball tracked | linear test slot L2 | random-init slot L2 | verdict |",
             "|---|---|---|---|---|---|"]
    for setting, by_prior in groups.items():
        g, lin = by_prior.get("gaussian", []), by_prior.get("linear", [])
        every = g + lin
        random = mean_of(every, "test_random_init_slot_l2_px")
        holds = bool(g) and mean_of(g, "test_slot_l2_px") < SLOT_TARGET_PX and (
            not lin or mean_of(lin, "test_slot_l2_px") >= FAIL_FRACTION * random)
        lines.append(f"| {setting} | {_cell(g, 'test_slot_l2_px')} | {_all_tracked(g, 'test_') if g else '—'} "
                     f"| {_cell(lin, 'test_slot_l2_px')} | {random:.2f} | {'holds' if holds else 'does not hold'} |")
    return ("## Beyond the paper's setting (test video, reporting seeds, tuned recipe, no retuning)\n\nThe claim "
            f"*holds* when the Gaussian's mean slot L2 is below {SLOT_TARGET_PX:g} px and the linear critic's at least "
            f"{FAIL_FRACTION:g}× the random-init encoder's.\n\n" + "\n".join(lines)
            + _earlier_recipe_note(sweeps))


def lengthscale_section(root: Path) -> str | None:
    sweeps = _sweeps(root, "lengthscale")
    rows = [r for rs in sweeps.values() for r in rs]
    if not rows:
        return None
    grid = {}
    for r in rows:
        grid.setdefault((float(r["initial_lengthscale_px"]), str(r["learn_lengthscale"])), []).append(r)
    lines = ["| θ0 (px) | θ | test slot L2 (px) | test joint L2 (px) | every ball tracked | final θ (px) |",
             "|---|---|---|---|---|---|"]
    for (theta0, learned), rs in sorted(grid.items()):
        lines.append(f"| {theta0:g} | {'learned' if learned == 'True' else 'fixed'} | {_cell(rs, 'test_slot_l2_px')} "
                     f"| {_cell(rs, 'test_readout_l2_px')} | {_all_tracked(rs, 'test_')} "
                     f"| {_cell(rs, 'final_lengthscale_px')} |")
    learned = [r for r in rows if str(r["learn_lengthscale"]) == "True"]
    fixed = [r for r in rows if str(r["learn_lengthscale"]) != "True"]
    best = selected(grid)
    motion = rows[0]["motion_lengthscale_px"]
    ends = ", ".join(f"{theta0:g} → {mean_of(rs, 'final_lengthscale_px'):.1f}"
                     for (theta0, learn), rs in sorted(grid.items()) if learn == "True")
    text = (f"Where learned θ ends, by θ0 (px, mean over seeds): {ends}; the simulated motion implies "
            f"θ = {motion:.1f} px (one step of a ball's 2-D move per coordinate: step/√2). "
            f"Lowest mean validation slot L2: θ0 = {best[0]:g} px, "
            f"{'learned' if best[1] == 'True' else 'fixed'} (test {fmt([r['test_slot_l2_px'] for r in grid[best]])} px). "
            f"Fixed θ: mean slot L2 {fmt([r['test_slot_l2_px'] for r in fixed])} px; learned: "
            f"{fmt([r['test_slot_l2_px'] for r in learned])} px.")
    picture = "".join(f"\n\n![lengthscale sweep, {'learned' if name == 'true' else 'fixed'} θ, validation video]"
                      f"(ablations/lengthscale/{name}/sweep_summary.png)"
                      for name in sweeps) + "\n\n(The plots show the validation video, as every sweep summary does.)"
    return ("## The lengthscale sweep (Gaussian f_θ, test video, reporting seeds, tuned recipe)\n\n"
            + "\n".join(lines) + "\n\n" + text + picture)


def choices_section(root: Path) -> str | None:
    sweeps = _sweeps(root, "choices")
    if not sweeps:
        return None
    lines = ["| choice the paper leaves open | rpm's choice | alternative | recipe | val slot L2, rpm's (px) "
             "| val slot L2, alternative (px) | every ball tracked, alternative | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    deciding = {"paper": [], "tuned": []}
    for recipe in ("paper", "tuned"):
        default = sweeps.get(f"{recipe}-default", [])
        for key, (what, ours, alternative) in CHOICES.items():
            rows = sweeps.get(f"{recipe}-{key}")
            if not rows or not default:
                continue
            by_value = {}
            for r in rows:
                # The alternative is what the sweep overrides besides the recipe, the prior and the runtime keys.
                value = " ".join(f"`{k.split(':', 1)[1]}={v}`" for k, v in r.items() if k.startswith("override:")
                                 and k.split(":", 1)[1] not in (*RUNTIME_KEYS, "trainer", "prior"))
                by_value.setdefault(value, []).append(r)
            for value, rs in by_value.items():
                verdict = choice_verdict(default, rs)
                if verdict.startswith("**decides"):
                    deciding[recipe].append(f"{what} ({value or alternative})")
                lines.append(f"| {what} | {ours} | {value or alternative} | {recipe} | {_cell(default, 'slot_l2_px')} "
                             f"| {_cell(rs, 'slot_l2_px')} | {_all_tracked(rs)} | {verdict} |")
    summary = "\n".join(f"- Under the {'tuned recipe' if recipe == 'tuned' else 'Appendix D recipe'}, "
                        + (f"the choices that decide whether the result appears: {'; '.join(found)}."
                           if found else "no single choice here decides whether the result appears.")
                        for recipe, found in deciding.items())
    return ("## What the paper leaves open, measured (validation video, tuning seeds, Gaussian f_θ)\n\n"
            f"Each alternative changes one choice from rpm's and leaves the rest of the recipe as it is. A setting "
            f"*works* when its mean validation slot L2 is below {SLOT_TARGET_PX:g} px; a choice *decides* when "
            f"rpm's setting and the alternative fall on different sides of that line.\n\n"
            + "\n".join(lines) + "\n\n" + summary)


def choice_verdict(default_rows, alternative_rows) -> str:
    """Whether swapping one choice moves the mean validation slot L2 across the line between working and not."""
    ours, theirs = works(default_rows), works(alternative_rows)
    if ours and not theirs:
        return "**decides**: the alternative breaks it"
    if theirs and not ours:
        return "**decides**: the alternative makes it work"
    return "does not decide (both work)" if ours else "does not decide here (neither works)"


def ablation_sections(root: Path) -> list[str]:
    sections = [f(root) for f in (recipe_section, beyond_section, lengthscale_section, choices_section)]
    return [s for s in sections if s]
