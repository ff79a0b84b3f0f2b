"""Write REPORT.md for a `make reproduce` directory: table, verdicts, commands, configs, figures, wall time.

Usage: python -m rpm_cli.report outputs/reproduce [--wall-seconds S] [--jobs J] [--figure-seconds S]
       [--reused N]
"""
import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch

from rpm_cli import CONFIG_DIR
from rpm_cli.atomic import write_text
from rpm_cli.readout import TRACKED_PX
from rpm_cli.runs import STARTS

METHODS = ("supervised", "gaussian", "linear")
METHOD_OVERRIDE = {"supervised": "trainer=supervised", "gaussian": "prior=gaussian", "linear": "prior=linear"}
METRICS = (("readout_l2_px", "joint readout L2"), ("slot_l2_px", "slot L2"))
# The claim, made testable (the paper gives no numbers): thresholds stated in the report itself.
SLOT_TARGET_PX = 5.0         # Gaussian: each map tracks one ball to within 5 px on average
JOINT_FACTOR = 2.0           # Gaussian joint readout no worse than 2x the supervised baseline
FAIL_FRACTION = 0.5          # "fails": slot L2 at least half the random-init encoder's (no per-ball slots learned)
TUNING_ORDER = ("adam", "sgd-sum", "fixed-theta", "map-bias", "seeds", "restarts")  # scripts/tune.sh's order


def collect(root: Path) -> dict:
    """{preset: {method: [run record]}} for every evaluated run under root/<preset>/<method>/seed-*/."""
    found = {}
    for evaluation in sorted(root.glob("*/*/seed-*/evaluation.json")):
        run_dir = evaluation.parent
        preset, method = run_dir.parent.parent.name, run_dir.parent.name
        result = json.loads(evaluation.read_text())
        lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        result["train_seconds"] = sum(m["seconds"] for m in lines) + discarded_start_seconds(run_dir)
        result["seed"] = int(run_dir.name.split("-")[1])
        found.setdefault(preset, {}).setdefault(method, []).append(result)
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


def fmt(values) -> str:
    mean, std = stat(values)
    return f"{mean:.2f} ± {std:.2f}" if len(values) > 1 else f"{mean:.2f}"


def results_table(found: dict) -> str:
    presets = list(found)
    header = "| method | " + " | ".join(f"{p}: {name} (px)" for p in presets for _, name in METRICS) + " |"
    lines = [header, "|---" * (1 + 2 * len(presets)) + "|"]
    for method in METHODS:
        cells = []
        for p in presets:
            runs = found[p].get(method, [])
            cells += [fmt([r[k] for r in runs]) + f" (n={len(runs)})" if runs else "—" for k, _ in METRICS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    for control in ("random_init", "chance"):
        cells = []
        for p in presets:
            runs = [r for m in METHODS for r in found[p].get(m, [])]
            cells += [fmt([r[control][k] for r in runs]) for k, _ in METRICS]
        lines.append(f"| {control.replace('_', '-')} control | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(found: dict) -> list[str]:
    out = []
    for preset, methods in found.items():
        if not all(methods.get(m) for m in METHODS):
            out.append(f"- **{preset}**: incomplete (needs supervised, gaussian and linear runs).")
            continue
        g_slot, _ = stat([r["slot_l2_px"] for r in methods["gaussian"]])
        g_joint, _ = stat([r["readout_l2_px"] for r in methods["gaussian"]])
        s_joint, _ = stat([r["readout_l2_px"] for r in methods["supervised"]])
        s_slot, _ = stat([r["slot_l2_px"] for r in methods["supervised"]])
        l_slot, _ = stat([r["slot_l2_px"] for r in methods["linear"]])
        l_joint, _ = stat([r["readout_l2_px"] for r in methods["linear"]])
        r_slot, _ = stat([r["random_init"]["slot_l2_px"] for m in METHODS for r in methods[m]])
        joint_ok = g_joint <= JOINT_FACTOR * s_joint
        gaussian_ok = g_slot < SLOT_TARGET_PX and joint_ok
        linear_fails = l_slot >= FAIL_FRACTION * r_slot
        good_seeds = [r["seed"] for r in methods["gaussian"] if r["slot_l2_px"] < SLOT_TARGET_PX]
        n = len(methods["gaussian"])
        if gaussian_ok:
            gaussian_verdict = "reproduced"
        elif good_seeds and joint_ok:
            gaussian_verdict = (f"reproduced only in {len(good_seeds)} of {n} seeds (seed {', '.join(map(str, good_seeds))});"
                                f" not on average")
        else:
            gaussian_verdict = "not reproduced"
        tracked = ", ".join(str(r.get("balls_tracked", "?")) for r in sorted(methods["gaussian"], key=lambda r: r["seed"]))
        out.append(
            f"- **{preset}: Gaussian f_θ recovers the ball positions almost as well as supervision: "
            f"{gaussian_verdict}.** Balls tracked to < {TRACKED_PX:g} px per seed: {tracked}. Gaussian slot L2 {g_slot:.2f} px "
            f"(target < {SLOT_TARGET_PX:g}; random-init encoder {r_slot:.2f}, supervised {s_slot:.2f}); "
            f"joint readout {g_joint:.2f} px vs supervised {s_joint:.2f} px (target ≤ {JOINT_FACTOR:g}×).")
        out.append(
            f"- **{preset}: the linear f_θ fails: {'reproduced' if linear_fails else 'not reproduced'}.** "
            f"Linear slot L2 {l_slot:.2f} px against the random-init encoder's {r_slot:.2f} px (fails = at least "
            f"{FAIL_FRACTION:g}× it) and the Gaussian's {g_slot:.2f} px ({l_slot / g_slot:.1f}× the Gaussian's); "
            f"its joint readout is {l_joint:.2f} px"
            + (" — on the paper's joint metric alone the linear critic does not look like a failure."
               if l_joint <= JOINT_FACTOR * s_joint else "."))
    return out


def per_run_table(found: dict) -> str:
    lines = [f"| preset | method | seed | joint L2 | slot L2 | balls tracked (< {TRACKED_PX:g} px) | matched slot errors (px) "
             "| random-init slot L2 | final loss | θ (px) | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for preset, methods in found.items():
        for method in METHODS:
            for r in sorted(methods.get(method, []), key=lambda r: r["seed"]):
                final = r["final_train"]
                theta = f"{final['lengthscale_px']:.2f}" if "lengthscale_px" in final else "—"
                matched = ", ".join(f"{m:.1f}" for m in r.get("slot_matched_px", []))
                lines.append(f"| {preset} | {method} | {r['seed']} | {r['readout_l2_px']:.2f} | {r['slot_l2_px']:.2f} "
                             f"| {r.get('balls_tracked', '?')} | {matched} "
                             f"| {r['random_init']['slot_l2_px']:.2f} | {final['loss']:.4f} | {theta} "
                             f"| {r['train_seconds']:.0f} |")
    return "\n".join(lines)


def tuning_section(root: Path) -> str:
    """The sweeps under root/tuning/ (written by scripts/tune.sh): one row per setting, seeds pooled."""
    from rpm_cli.figures.sweep import summary_rows

    sweeps = sorted((p for p in (root / "tuning").glob("*") if p.is_dir() and any(p.rglob("checkpoint.pt"))),
                    key=lambda p: (TUNING_ORDER.index(p.name) if p.name in TUNING_ORDER else len(TUNING_ORDER), p.name))
    if not sweeps:
        return "No tuning sweep found under `tuning/` (run `scripts/tune.sh`)."
    lines = ["| sweep | overrides | seeds | epochs | final loss | θ (px) | joint L2 | slot L2 "
             f"| seeds with all balls tracked (< {TRACKED_PX:g} px) | random-init slot L2 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for sweep in sweeps:
        settings = {}
        for row in summary_rows(sweep, finished_only=True):
            overrides = " ".join(o for o in row["overrides"].split()
                                 if not o.startswith(("seed=", "evaluate=", "trainer.threads=", "trainer.progress=")))
            settings.setdefault(overrides, []).append(row)
        for overrides, rows in settings.items():
            thetas = [r["final_lengthscale_px"] for r in rows if isinstance(r["final_lengthscale_px"], float)]
            tracked = sum(r["balls_tracked"] == r["n_balls"] for r in rows)
            lines.append(
                f"| {sweep.name} | `{overrides}` | {', '.join(str(r['seed']) for r in rows)} | {rows[0]['epochs']} "
                f"| {fmt([r['final_loss'] for r in rows])} | {fmt(thetas) if thetas else '—'} "
                f"| {fmt([r['readout_l2_px'] for r in rows])} | {fmt([r['slot_l2_px'] for r in rows])} "
                f"| {tracked} of {len(rows)} | {fmt([r['random_init_slot_l2_px'] for r in rows])} |")
    return "\n".join(lines)


def write_report(root, wall_seconds: float | None = None, jobs: int | None = None,
                 figure_seconds: float | None = None, reused: int = 0) -> Path:
    root = Path(root)
    found = collect(root)
    if not found:
        raise SystemExit(f"no evaluated runs under {root}/<preset>/<method>/seed-*/")
    runs = [r for methods in found.values() for rs in methods.values() for r in rs]
    presets_text = "\n\n".join(f"`configs/experiment/{p}.yaml`:\n```yaml\n{(CONFIG_DIR / 'experiment' / f'{p}.yaml').read_text().strip()}\n```"
                               for p in found if (CONFIG_DIR / "experiment" / f"{p}.yaml").exists())
    commands = "\n".join(f"rpm train experiment={p} {METHOD_OVERRIDE[m]} seed=<seed> hydra.run.dir={root}/{p}/{m}/seed-<seed>\n"
                         f"rpm evaluate run_dir={root}/{p}/{m}/seed-<seed>" for p in found for m in found[p])
    wall = f"{wall_seconds / 60:.1f} min for the whole `make reproduce`" if wall_seconds else "not recorded"
    if figure_seconds:
        wall += f" (Fig. 1, drawn from the tuned runs, which go first, was ready after {figure_seconds / 60:.1f} min)"
    if reused:
        wall += f"; {reused} runs were already done by an earlier invocation and are not in that time"
    figures = root / "figures"
    fig_lines = ["![Fig. 1](figures/fig1.png)"] if (figures / "fig1.png").exists() else ["(no figures drawn)"]
    text = f"""# Reproducing Fig. 1 of "InfoNCE is variational inference in a recognition parameterised model"

Generated by `make reproduce` (`scripts/reproduce.sh`); every number below was measured by this run.
Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}; {jobs or '?'} runs in parallel.
Wall time: {wall}; training alone took {np.mean([r['train_seconds'] for r in runs]):.0f} s per run on average
({len(runs)} runs).

## Results (held-out video, mean ± std over seeds)

Readout fitted on the training video, scored on a separately seeded held-out video. *Joint*: one affine map
from all six latents to all six coordinates (the paper's Fig. 1C). *Slot*: each map's (x, y) fitted to one
ball, maps matched to balls by least error: low only when each latent tracks one ball.

{results_table(found)}

## Verdicts

The paper gives no numbers; we call the claim reproduced when the Gaussian prior's slot L2 is below
{SLOT_TARGET_PX:g} px and its joint L2 within {JOINT_FACTOR:g}× the supervised baseline's, and call the linear critic a
failure when its slot L2 is at least {FAIL_FRACTION:g}× the random-init encoder's (it learned no per-ball slots). Both
verdicts use means over seeds; the per-run table below shows the spread.

{chr(10).join(verdicts(found))}

## Figures

{chr(10).join(fig_lines)}

Panels A–E are also in `figures/fig1a.png` … `fig1e.png` (and `.pdf`).

## How the tuned recipe was found

Gaussian f_θ, full size, each run evaluated on the held-out video; `scripts/tune.sh` reruns every sweep as
it was run (plots in `tuning/*/sweep_summary.png`). The first four sweeps (adam, sgd-sum, fixed-theta,
map-bias) start from Appendix D's settings on seed 0 and change one thing at a time. The last two are
overrides of the default `experiment=tuned`: `seeds` runs single starts on other seeds, to see how often a
map ends on no ball; `restarts` is the tuned recipe itself on seeds 12–15, none of them a reproduction seed. Means ± std over a setting's seeds;
the final loss is per pair except where `loss_reduction=sum` (summed over the 30 pairs).

{tuning_section(root)}

## Every run

{per_run_table(found)}

## Exact commands and configs

```bash
{commands}
```

{presets_text}

Everything else is the default config (`rpm train --cfg job` prints it): 900 frames of 256×256, 3 balls of
diameter 32 px, held-out video of {runs[0]['n_test_frames']} frames (`data.test_seed=1000`), initial lengthscale one ball
diameter (32 px), learned.
"""
    path = root / "REPORT.md"
    write_text(path, text)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--wall-seconds", type=float)
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--figure-seconds", type=float, help="when Fig. 1 was ready, from the start")
    parser.add_argument("--reused", type=int, default=0, help="runs an earlier invocation had already finished")
    args = parser.parse_args()
    print(write_report(args.root, args.wall_seconds, args.jobs, args.figure_seconds, args.reused))


if __name__ == "__main__":
    main()
