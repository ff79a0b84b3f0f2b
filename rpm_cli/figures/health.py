"""The recipe study's pictures: recipe_health.png, each run's least concentrated map at each check
(map_concentration, read from the maps alone), runs that tracked every ball against those that did not, one
panel per recipe, re-seeds marked; recipe_maps.png, failing baseline runs' maps beside the candidate's;
recipe_precision.png, each seed's worst ball under a candidate against the recipe it is compared with."""
import tempfile
from pathlib import Path

from rpm_cli.figures.maps import draw_maps, draw_sweep_maps
from rpm_cli.plotting import plt, save_png
from rpm_cli.runs import load_run


def draw_health(found: dict, out_path, tracked) -> Path | None:
    """found: {recipe: {prior: {seed: record with `metrics`}}}; tracked(record) -> bool. None when no run logged
    map health."""
    panels = [(c, [r for runs in priors.values() for r in runs.values() if not r.get("borrowed")
                   and any("map_concentration" in m for m in r["metrics"])]) for c, priors in found.items()]
    panels = [(c, runs) for c, runs in panels if runs]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), sharey=True, squeeze=False)
    for ax, (candidate, runs) in zip(axes[0], panels):
        for good in (True, False):  # failures drawn last, on top
            for run in (r for r in runs if tracked(r) == good):
                lines = [m for m in run["metrics"] if "map_concentration" in m]
                epochs = [m["epoch"] for m in lines]
                ax.plot(epochs, [min(m["map_concentration"]) for m in lines], lw=0.8, alpha=0.5 if good else 0.9,
                        color="tab:blue" if good else "tab:red")
                checked = {m["epoch"]: min(m["map_concentration"]) for m in lines}
                after = [m["epoch"] - 1 for m in run["metrics"] if "reseeded_maps" in m and m["epoch"] - 1 in checked]
                ax.plot(after, [checked[e] for e in after], "k|", ms=8)
        ax.set_title(f"{candidate} ({len(runs)} runs)")
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel("least concentrated map")
    axes[0][0].plot([], [], color="tab:blue", label="every ball tracked")
    axes[0][0].plot([], [], color="tab:red", label="a ball missed")
    axes[0][0].plot([], [], "k|", label="a check that re-seeded")
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = save_png(fig, out_path)
    plt.close(fig)
    return path


def draw_failure_maps(pairs: list[tuple[str, Path]], out_path) -> Path | None:
    """recipe_maps.png: the maps of the runs named in pairs [(label, run dir)] on the first validation frame,
    one tile each (a failing baseline run beside the candidate's run of the same seed)."""
    if not pairs:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        tiles = []
        for k, (label, run_dir) in enumerate(pairs):
            run = load_run(run_dir)
            val = run.video("val")
            tiles.append((label, draw_maps(run.encoder, val.frames[:1], val.centres[:1], Path(tmp) / f"{k}.png")))
        return draw_sweep_maps(tiles, out_path, columns=2)


def draw_paired_worst(pairs: dict[str, list[tuple[float, float]]], out_path, threshold_px: float,
                      names: tuple[str, str]) -> Path | None:
    """pairs: {prior: [(worst ball px under names[0], under names[1]) per seed]}: one point per seed, log axes,
    the diagonal and the threshold drawn. None when there is no pair."""
    if not any(pairs.values()):
        return None
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    values = [v for points in pairs.values() for point in points for v in point]
    low, high = min(values) / 1.5, max(values) * 1.5
    ax.plot([low, high], [low, high], color="0.6", lw=0.8)
    ax.axvline(threshold_px, color="tab:red", lw=0.8, ls="--")
    ax.axhline(threshold_px, color="tab:red", lw=0.8, ls="--", label=f"{threshold_px:g} px: every ball tracked below")
    for prior, points in pairs.items():
        if points:
            ax.scatter(*zip(*points), s=14, alpha=0.8, label=f"{prior} ({len(points)})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel(f"worst ball, {names[0]} (px)")
    ax.set_ylabel(f"worst ball, {names[1]} (px)")
    ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    path = save_png(fig, out_path)
    plt.close(fig)
    return path
