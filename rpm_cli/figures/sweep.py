"""Summarise a multirun: one CSV row per run and one plot of both L2 metrics against the swept key.

Sweeps are for choosing, so the plot and the unprefixed L2 columns are the validation video's; the test
video's scores are in `test_*` columns for the record, never for choosing.
"""
import csv
import io
import math
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from rpm_cli.atomic import write_text
from rpm_cli.data.build import dataset_class
from rpm_cli.figures.maps import draw_maps, draw_sweep_maps
from rpm_cli.plotting import plt, save_figure
from rpm_cli.layout import CHECKPOINT, RUNTIME_KEYS
from rpm_cli.records import run_record
from rpm_cli.layout import runs_in_sweep
from rpm_cli.runs import load_checkpoint, load_run

METRICS = ("readout_l2_px", "slot_l2_px")
SUMMARY_CSV = "sweep_summary.csv"  # the one file of a sweep that is committed (its run dirs stay local)


def parse_value(text: str):
    value = yaml.safe_load(text)
    return value if isinstance(value, (int, float, bool)) or value is None else str(text)


def run_overrides(run_dir: Path) -> dict:
    path = run_dir / ".hydra" / "overrides.yaml"
    items = yaml.safe_load(path.read_text()) if path.exists() else []
    return dict(item.split("=", 1) for item in items if "=" in item and not item.startswith("hydra"))


def summary_rows(sweep_dir, finished_only: bool = False) -> list[dict]:
    """One row per run; an unfinished run is an error, or skipped with finished_only (a sweep still running)."""
    rows = []
    for run_dir in runs_in_sweep(sweep_dir):
        if finished_only and not load_checkpoint(run_dir / CHECKPOINT)["finished"]:
            continue
        result = run_record(run_dir)  # reading evaluates nothing: `rpm figures` evaluated the runs first
        cfg = result["config"]
        prior = cfg["prior"] or {}
        val, test = result["val"], result["test"]
        final = result["final_train"]
        overrides = run_overrides(run_dir)
        common = {
            "run": str(run_dir.relative_to(sweep_dir)), "overrides": " ".join(f"{k}={v}" for k, v in overrides.items()),
            # What the run's numbers depend on: the overrides less the keys that change nothing but the seed.
            "setting": " ".join(f"{k}={v}" for k, v in overrides.items() if k not in RUNTIME_KEYS),
            **{f"override:{k}": v for k, v in overrides.items()},
        }
        if dataset_class(cfg["data"]).observation != "image":
            rows.append({**common, **_scores_row(cfg, result)})
            continue
        rows.append({
            **common,
            "seed": cfg["seed"], "n_balls": cfg["data"]["n_balls"], "prior": prior.get("name", ""),
            "objective": cfg["objective"]["name"],
            "initial_lengthscale_px": prior.get("lengthscale", ""),
            "learn_lengthscale": prior.get("learn_lengthscale", ""),
            "final_lengthscale_px": final.get("lengthscale_px", ""), "final_loss": final["loss"],
            "epochs": final["epoch"], "restarts": cfg["trainer"]["restarts"],
            "map_bias_init": cfg["encoder"]["map_bias_init"],
            **{m: val[m] for m in METRICS}, "balls_tracked": val["balls_tracked"],
            **{f"random_init_{m}": val["random_init"][m] for m in METRICS},
            "chance_l2_px": val["chance"]["readout_l2_px"],
            **{f"test_{m}": test[m] for m in METRICS}, "test_balls_tracked": test["balls_tracked"],
            "test_random_init_slot_l2_px": test["random_init"]["slot_l2_px"],
            "motion_lengthscale_px": result.get("motion_lengthscale_px", ""),
        })
    return rows


def _scores_row(cfg: dict, result: dict) -> dict:
    """A run on a dataset other than the balls: its own scores (the dataset's table), with controls."""
    prior, final = cfg["prior"] or {}, result["final_train"]
    val, test = result["val"], result["test"]
    metrics = [m for m, _ in dataset_class(cfg["data"]).table]
    return {"seed": cfg["seed"], "data": cfg["data"]["name"], "scores": " ".join(metrics), "prior": prior.get("name", ""),
            "objective": cfg["objective"]["name"], "initial_lengthscale": prior.get("lengthscale", ""),
            "final_lengthscale": final.get("lengthscale_px", ""), "final_loss": final["loss"], "epochs": final["epoch"],
            **{m: val[m] for m in metrics}, **{f"random_init_{m}": val["random_init"][m] for m in metrics},
            **{f"chance_{m}": val["chance"][m] for m in metrics}, **{f"test_{m}": test[m] for m in metrics}}


def row_metrics(rows: list[dict]) -> tuple[str, ...]:
    """The two scores a sweep's rows carry: the balls' L2s, or another dataset's (data/clica.py: R², MCC)."""
    return METRICS if "slot_l2_px" in rows[0] else tuple(rows[0]["scores"].split())


TEXT_COLUMNS = ("run", "overrides", "setting", "prior", "objective", "data", "scores")


def read_summary(sweep_dir) -> list[dict]:
    """sweep_summary.csv read back with the types summary_rows gave it (override values stay text, as there)."""
    with open(Path(sweep_dir) / SUMMARY_CSV, newline="") as f:
        return [{k: v if v == "" or k in TEXT_COLUMNS or k.startswith("override:") else parse_value(v)
                 for k, v in row.items()} for row in csv.DictReader(f)]


def sweep_rows(sweep_dir) -> list[dict]:
    """A sweep's finished runs: from the runs when they are here, else from its sweep_summary.csv, which is all
    a fresh clone has of the committed sweeps (their run dirs stay local)."""
    sweep_dir = Path(sweep_dir)
    if any(sweep_dir.rglob(CHECKPOINT)):
        return summary_rows(sweep_dir, finished_only=True)
    return read_summary(sweep_dir) if (sweep_dir / SUMMARY_CSV).exists() else []


def write_csv(rows: list[dict], path) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def swept_keys(rows: list[dict]) -> list[str]:
    """Override keys whose value differs between runs (the seed is averaged over, never an axis)."""
    keys = list(dict.fromkeys(k.split(":", 1)[1] for row in rows for k in row if k.startswith("override:")))
    return [k for k in keys if k not in RUNTIME_KEYS and len({str(r.get(f"override:{k}")) for r in rows}) > 1]


def choose_x(rows: list[dict], x_key: str | None) -> str | None:
    keys = swept_keys(rows)
    if x_key:
        return x_key
    if "prior.lengthscale" in keys:
        return "prior.lengthscale"
    return keys[0] if keys else None


def _line_label(row: dict, group_keys: list[str]) -> str:
    parts = []
    for key in group_keys:
        value = row.get(f"override:{key}")
        if key == "prior.learn_lengthscale":
            parts.append("learned θ" if parse_value(str(value)) is True else "fixed θ")
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts) or "runs"


def plot_summary(rows: list[dict], x_key: str | None, path_stem) -> list[Path]:
    """Mean ± std over seeds of both metrics against x_key; one line per setting of the other swept keys."""
    group_keys = [k for k in swept_keys(rows) if k != x_key]
    lines = defaultdict(lambda: defaultdict(list))
    for row in rows:
        x = parse_value(str(row.get(f"override:{x_key}"))) if x_key else "all runs"
        lines[_line_label(row, group_keys)][x].append(row)
    xs_all = {x for points in lines.values() for x in points}
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs_all)
    categories = sorted(map(str, xs_all))
    metrics = row_metrics(rows)
    balls = metrics == METRICS
    titles = (("validation: joint readout L2 (Fig. 1C)", "validation: per-slot L2") if balls
              else tuple(f"validation: {m}" for m in metrics))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
    for ax, metric, title in zip(axes, metrics, titles):
        for label, points in sorted(lines.items()):
            xs = sorted(points, key=lambda v: v if numeric else str(v))
            means = [np.mean([r[metric] for r in points[x]]) for x in xs]
            stds = [np.std([r[metric] for r in points[x]]) for x in xs]
            positions = xs if numeric else [categories.index(str(x)) for x in xs]
            counts = sorted({len(points[x]) for x in xs})
            n = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
            ax.errorbar(positions, means, yerr=stds, marker="o", capsize=3, label=f"{label} (n={n} seeds)")
        chance = "chance_l2_px" if balls else f"chance_{metric}"
        ax.axhline(np.mean([r[chance] for r in rows]), color="grey", ls="--", label="chance")
        ax.axhline(np.mean([r[f"random_init_{metric}"] for r in rows]), color="black", ls=":",
                   label="random-init encoder")
        if numeric and min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 8:
            ax.set_xscale("log", base=2)
        if not numeric:
            ax.set_xticks(range(len(categories)), categories)
        ax.set_xlabel(("initial lengthscale θ" if x_key == "prior.lengthscale" else x_key) or "")
        ax.set_ylabel("mean L2 distance to true centre (px)" if balls else metric)
        ax.set_title(title)
        if balls:
            ax.set_ylim(bottom=0)
    axes[1].legend(fontsize=8, loc="best")
    fig.suptitle(f"{len(rows)} runs, mean ± std over seeds")
    return save_figure(fig, path_stem)


def summarise_sweep(sweep_dir, x_key: str | None = None) -> dict:
    sweep_dir = Path(sweep_dir)
    rows = summary_rows(sweep_dir)
    write_csv(rows, sweep_dir / SUMMARY_CSV)
    x = choose_x(rows, x_key)
    plots = plot_summary(rows, x, sweep_dir / "sweep_summary")
    maps = [sweep_maps(sweep_dir, rows)] if row_metrics(rows) == METRICS else []  # maps: image datasets only
    table = _table(rows)
    print(table)
    return {"rows": rows, "x_key": x, "files": [sweep_dir / SUMMARY_CSV, *plots, *maps], "table": table}


def sweep_maps(sweep_dir: Path, rows: list[dict]) -> Path:
    """sweep_maps.png: each run's maps on the first validation frame (a sweep is for choosing), one tile per
    run, labelled by its overrides."""
    with tempfile.TemporaryDirectory() as tmp:
        tiles = []
        for k, row in enumerate(rows):
            run = load_run(sweep_dir / row["run"])
            val = run.video("val")
            tile = draw_maps(run.encoder, val.frames[:1], val.centres[:1], Path(tmp) / f"{k}.png")
            tiles.append((f"{row['setting'] or 'defaults'} seed={row['seed']}", tile))
        return draw_sweep_maps(tiles, sweep_dir / "sweep_maps.png")


def _table(rows: list[dict]) -> str:
    a, b = row_metrics(rows)
    labels = ("joint L2", "slot L2") if (a, b) == METRICS else (a, b)
    lines = [f"{'run':<48} {'θ final':>8} {'loss':>7} {labels[0]:>9} {labels[1]:>8}"]
    for r in rows:
        theta = r.get("final_lengthscale_px", r.get("final_lengthscale"))
        theta = f"{theta:8.3g}" if isinstance(theta, float) and math.isfinite(theta) else f"{'-':>8}"
        lines.append(f"{r['run'][:48]:<48} {theta} {r['final_loss']:7.3f} {r[a]:9.2f} {r[b]:8.2f}")
    return "\n".join(lines)
