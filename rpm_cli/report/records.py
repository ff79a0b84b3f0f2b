"""The records `rpm report` reads (rpm_cli.records' run records, arranged by the reproduction layout; sweep
rows), and the summary statistics every table uses (mean and population SD, "±" in the report)."""
from pathlib import Path

import numpy as np

from rpm_cli.figures.sweep import sweep_rows
from rpm_cli.reproduction import PRESETS, REPORTING_SEEDS, parse_run_dir
from rpm_cli.records import is_evaluated, run_record

METRICS = (("readout_l2_px", "joint L2"), ("slot_l2_px", "slot L2"))


def collect(root: Path) -> dict:
    """{preset: {method: [run record]}} for every evaluated run under the reproduction layout (presets of
    PRESETS only)."""
    found = {}
    for evaluation in sorted(root.glob("*/*/seed-*/evaluation.json")):
        run_dir = evaluation.parent
        preset, method, seed = parse_run_dir(run_dir)
        if preset not in PRESETS:  # another study's folder at the same depth (recipe_confirmation/<prior>/...)
            continue
        if not is_evaluated(run_dir):
            continue  # evaluated by an older rpm or before its last epoch: `rpm evaluate` updates it
        result = {**run_record(run_dir), "seed": seed}
        found.setdefault(preset, {}).setdefault(method, []).append(result)
    for methods in found.values():
        for runs in methods.values():
            runs.sort(key=lambda r: r["seed"])
    return found


def reporting_runs(folder: Path) -> dict[int, dict]:
    """{seed: run record, its seed added} of the evaluated runs in folder/seed-<N> on reporting seeds: a
    registered study's cell (a run on any other seed never enters its numbers)."""
    runs = {}
    for evaluation in sorted(Path(folder).glob("seed-*/evaluation.json")):
        seed = int(evaluation.parent.name.removeprefix("seed-"))
        if seed in REPORTING_SEEDS and is_evaluated(evaluation.parent):
            runs[seed] = {**run_record(evaluation.parent), "seed": seed}
    return runs


def stat(values) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


def fmt(values, digits: int = 2) -> str:
    mean, std = stat(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def mean_of(rows, key) -> float:
    return stat([r[key] for r in rows])[0]


def test_scores(runs, key, control=None) -> list[float]:
    return [(r["test"][control] if control else r["test"])[key] for r in runs]


def sweeps_under(folder: Path, order=None) -> dict[str, list[dict]]:
    """Each sweep in folder that has finished runs, by name, with their rows (from the runs or the summary)."""
    return {p.name: rows for p in sorted(folder.glob("*"), key=order) if p.is_dir() and (rows := sweep_rows(p))}
