"""REPORT.md for a `make reproduce` directory: the results, priors, tuning, per-run and theory sections.

Every fact in the report (video sizes, seeds, number of latents, batch size, the priors' parameters) is read
from the runs' own resolved configs and results; the layout comes from rpm_cli.reproduction.
"""
import json
import platform
from pathlib import Path

import numpy as np

from rpm_cli import CONFIG_DIR
from rpm_cli.atomic import write_text
from rpm_cli.layout import METRICS_BOOKKEEPING
from rpm_cli.errors import UserError
from rpm_cli.readout import TRACKED_PX
from rpm_cli.reproduction import (FIG1_METHODS, PROTOCOL, REPORTING_SEEDS, RPM_PROTOCOL, STUDY_RECIPES, TUNED,
                                  TUNED_SHIFT, TUNING_SEEDS, method_override, study_pins)
from rpm_cli.report.ablations import ablation_sections
from rpm_cli.report.clica import clica_section
from rpm_cli.report.recipe import write_recipe_report
from rpm_cli.report.rpm_objective import rpm_section
from rpm_cli.report.confidence import study_section
from rpm_cli.report.records import METRICS, collect, fmt, stat, sweeps_under, test_scores
from rpm_cli.report.verdicts import FAIL_FRACTION, JOINT_FACTOR, SLOT_TARGET_PX, prior_verdicts, selected, verdicts

TUNING_ORDER = ("adam", "sgd-sum", "fixed-theta", "map-bias", "seeds", "restarts")  # scripts/tune.sh's order


def results_table(found: dict) -> str:
    presets = list(found)
    header = "| method | " + " | ".join(f"{p}: {name} (px)" for p in presets for _, name in METRICS) + " |"
    lines = [header, "|---" * (1 + 2 * len(presets)) + "|"]
    for method in FIG1_METHODS:
        # Each method's controls come from its own seeds (their initial weights and training videos).
        for control, label in ((None, method), ("random_init", f"{method}: random-init control, same seeds"),
                               ("chance", f"{method}: chance, same seeds")):
            cells = []
            for p in presets:
                runs = found[p].get(method, [])
                n = f" (n={len(runs)})" if control is None else ""
                cells += [f"{fmt(test_scores(runs, k, control))}{n}" if runs else "—" for k, _ in METRICS]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def learned_parameters(runs) -> str:
    keys = [k for k in runs[0]["final_train"] if k not in METRICS_BOOKKEEPING and isinstance(runs[0]["final_train"][k], float)]
    if not keys:
        return "—"
    return "; ".join(f"{k} {fmt([r['final_train'][k] for r in runs])}" for k in keys[:4]) + (
        f"; +{len(keys) - 4} more" if len(keys) > 4 else "")


def priors_section(found: dict, preset: str) -> str:
    methods = {m: runs for m, runs in found.get(preset, {}).items() if m != "supervised"}
    if not methods:
        return f"No prior runs under `{preset}/`."
    lines = ["| prior | joint L2 (px) | slot L2 (px) | random-init slot L2, same seeds (px) | balls tracked "
             "| retrieval top-1 | top-1 without the base frame | MRR without the base frame | I_N, N=B−1 | final loss "
             "| learned parameters |", "|---" * 11 + "|"]
    for method, runs in sorted(methods.items(), key=lambda mr: stat(test_scores(mr[1], "slot_l2_px"))[0]):
        tracked = "/".join(str(r["test"]["balls_tracked"]) for r in runs)
        lines.append(
            f"| {method} | {fmt(test_scores(runs, 'readout_l2_px'))} | {fmt(test_scores(runs, 'slot_l2_px'))} "
            f"| {fmt(test_scores(runs, 'slot_l2_px', 'random_init'))} | {tracked} | {fmt(test_scores(runs, 'retrieval_top1'))} "
            f"| {fmt(test_scores(runs, 'retrieval_top1_without_base'))} | {fmt(test_scores(runs, 'retrieval_mrr_without_base'))} "
            f"| {fmt(test_scores(runs, 'infonce_estimate_batch'))} | {fmt([r['final_train']['loss'] for r in runs], 3)} "
            f"| {learned_parameters(runs)} |")
    every = [r for runs in found[preset].values() for r in runs]
    lines.append(f"| random-init control, every run pooled | {fmt(test_scores(every, 'readout_l2_px', 'random_init'))} "
                 f"| {fmt(test_scores(every, 'slot_l2_px', 'random_init'))} | | | | | | | | |")
    lines.append(f"| chance control, every run pooled | {fmt(test_scores(every, 'readout_l2_px', 'chance'))} "
                 f"| {fmt(test_scores(every, 'slot_l2_px', 'chance'))} | | | | | | | | |")
    return "\n".join(lines)


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
    result = json.loads(path.read_text())
    status = ["skip" if c["passed"] is None else "pass" if c["passed"] else "fail" for c in result["checks"]]
    count = {word: status.count(word) for word in ("pass", "fail", "skip")}
    failed = [c["name"] for c, s in zip(result["checks"], status) if s == "fail"]
    verdicts = result.get("verdicts", [])
    refuted = [v["name"] for v in verdicts if v.get("status") == "refuted"]
    return (f"`rpm theory` checks the paper's relations (Sec. 4, App. A–C) on a closed-form linear-Gaussian RPM, "
            f"each check a closed form against Monte Carlo or quadrature: {count['pass']} checks pass, "
            f"{count['fail']} fail, {count['skip']} skipped" + (f" (failed: {', '.join(failed)})" if failed else "")
            + (f"; {len(refuted)} of {len(verdicts)} measured verdicts refute the paper's words "
               f"({', '.join(refuted)})" if refuted else "")
            + ". Each claim in the paper's words with its numbers: [theory/THEORY.md](theory/THEORY.md).")


def registered_arms(found: dict) -> dict:
    """{preset: {method: runs}} of the registered study: its arms, and only runs on reporting seeds (a run on
    any other seed never enters the study's numbers)."""
    arms = {}
    for preset, methods in found.items():
        chosen = {m: [r for r in methods[m] if r["seed"] in REPORTING_SEEDS] for m in PROTOCOL.arms if m in methods}
        if chosen := {m: runs for m, runs in chosen.items() if runs}:
            arms[preset] = chosen
    return arms


def write_report(root, wall_seconds: float | None = None, jobs: int | None = None,
                 figure_seconds: float | None = None, reused: int = 0) -> Path:
    root = Path(root)
    found = collect(root)
    if not found and (clica := clica_section(root)):  # a root that holds only the second world's grid
        return _write(root, ["# A second world: what each prior recovers (data=clica)",
                             f"Generated by `OUT={root} bash scripts/clica_grid.sh`, then `rpm report {root}`; every "
                             "number below was measured by rpm.", clica])
    if not found:
        raise UserError(f"no evaluated runs under {root}/<preset>/<method>/seed-*/ or {root}/clica/ "
                        "(run `make reproduce`, or scripts/clica_grid.sh)")
    runs = [r for methods in found.values() for rs in methods.values() for r in rs]
    threads = {r["config"]["trainer"]["threads"] for r in runs}
    wall = f"{wall_seconds / 60:.1f} min for the whole `make reproduce`" if wall_seconds else "not recorded"
    if figure_seconds:
        wall += f" (Fig. 1, drawn from the tuned runs, which go first, was ready after {figure_seconds / 60:.1f} min)"
    if reused:
        wall += f"; {reused} runs were already done by an earlier invocation and are not in that time"
    commands = "\n".join(f"rpm train {STUDY_RECIPES[p]} {method_override(m)} seed=<seed> hydra.run.dir={root}/{p}/{m}/seed-<seed>"
                         for p in found for m in found[p])
    recipe_files = {"tuned": "trainer/tuned.yaml", "paper": "trainer/paper.yaml"}
    recipes = "\n\n".join(f"`configs/{recipe_files[p]}`:\n```yaml\n{(CONFIG_DIR / recipe_files[p]).read_text().strip()}\n```"
                          for p in found if p in recipe_files)
    recipes += _recipe_note(found)
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
        *(["## The registered study: success rates with intervals, and the registered tests\n\n"
           + study_section(registered_arms(found))] if registered_arms(found) else []),
        "## Results (test video, mean ± SD over the reporting seeds)\n\n± is the population standard deviation "
        "of the seeds' values (numpy's default, ddof = 0); the registered study's section above gives intervals. "
        "Readout fitted on the training video, "
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
        *([f"## objective=rpm: a learned posterior beside InfoNCE\n\n{rpm}"]
          if (rpm := rpm_section(root, registered_arms(found).get(RPM_PROTOCOL.preset, {}))) else []),
        *([f"## A second world: what each prior recovers (data=clica)\n\n{clica}"] if (clica := clica_section(root)) else []),
        *([f"## A default that works on every seed: the recipe study\n\nThe study of issue 25 (candidate recipes "
           f"on tuning seeds, each frozen default confirmed on fresh seeds) is in [{recipe.name}]({recipe.name})."]
          if (recipe := write_recipe_report(root)) else []),
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
    return _write(root, sections)


def _recipe_note(found: dict) -> str:
    """What the registered study's tuned runs ran with, against today's `trainer=tuned`, and any run trained
    otherwise (the runs' own configs, in their checkpoints, are what they used)."""
    if "tuned" not in found:
        return ""
    pins = study_pins("tuned")
    listed = lambda values: ", ".join(f"{k}={v}" for k, v in values.items())  # noqa: E731
    note = (f"\n\nThe registered study's tuned runs are trained with `{STUDY_RECIPES['tuned']}` "
            f"(configs/protocol.yaml): its recipe as it ran, {listed(pins)}. Today's `trainer=tuned`, what a plain "
            f"`rpm train` uses, sets {listed({k: TUNED.trainer[k] for k in pins})} instead (issue 25's recipe study, "
            "confirmed on its own fresh seeds: RECIPE.md).")
    off = [run for runs in found["tuned"].values() for run in runs
           if {key: run["config"]["trainer"].get(key, 0) for key in pins} != pins]
    if off:
        settings = sorted({listed({k: run["config"]["trainer"].get(k, 0) for k in pins}) for run in off})
        note += (f" {len(off)} of the tuned runs above {'was' if len(off) == 1 else 'were'} trained otherwise: "
                 f"{'it' if len(off) == 1 else 'they'} ran with {'; '.join(settings)}; "
                 "each run's own config is in its checkpoint.")
    return note


def _write(root: Path, sections: list[str]) -> Path:
    path = root / "REPORT.md"
    write_text(path, "\n\n".join(sections) + "\n")
    return path
