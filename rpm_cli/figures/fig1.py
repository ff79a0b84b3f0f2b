"""Fig. 1 of the paper, regenerated from finished runs.

A: motion between consecutive frames. B: ball centres extracted by the linear readout vs the truth, for the
Gaussian and the linear f_θ. C: mean L2 error per method (both metrics, mean ± std over seeds, with
controls). D, E: P(z'|z) for the coral ball's next position under each f_θ, in the empirical-marginal form
of App. A.1 (Eq. 34): P(j|i) ∝ f_θ(z_i, z'_j) over the N held-out frames j.
"""
from pathlib import Path

import numpy as np
import torch
from matplotlib import patheffects
from matplotlib.colors import Normalize

from rpm_cli.data.balls import ball_colours
from rpm_cli.errors import UserError
from rpm_cli.plotting import frame_axes, plt, save_figure
from rpm_cli.readout import joint_predictions
from rpm_cli.layout import EVALUATION
from rpm_cli.records import run_record
from rpm_cli.reproduction import FIG1_METHODS, find_reproduction_runs
from rpm_cli.layout import resolve_run_dir
from rpm_cli.runs import Run, load_run
TRAIL = 12  # frames of trajectory drawn in panel B


def next_frame_probabilities(log_f_row: np.ndarray) -> np.ndarray:
    """P(j | i) = f(z_i, z'_j) / Σ_j' f(z_i, z'_j'), from one row of log f (stable softmax)."""
    shifted = log_f_row - log_f_row.max()
    p = np.exp(shifted)
    return p / p.sum()


def readout_predictions(run: Run) -> np.ndarray:
    """Test-video centres predicted by the joint affine readout, (N, n_balls, 2) px."""
    return joint_predictions(run.latents("train"), run.video("train").centres, run.latents("test"))


@torch.no_grad()
def p_next(run: Run, base: int) -> np.ndarray:
    """P(j | base) over every test frame j: the base frame itself is one of the candidates."""
    if run.prior is None:
        raise UserError(f"run {run.run_dir} is supervised: it has no f_θ for P(z'|z)")
    z = torch.from_numpy(run.latents("test") / run.cfg.data.image_size).float()
    return next_frame_probabilities(run.model.prior_logits(z[base:base + 1], z)[0].double().numpy())


def draw_motion(ax, video, t: int) -> None:
    """Panel A: frame t with the previous frame faded in and each ball's move to frame t + 1 as an arrow."""
    frame = video.frames[t].transpose(1, 2, 0).astype(float)
    previous = video.frames[t - 1].transpose(1, 2, 0).astype(float)
    ax.imshow(np.clip(np.maximum(frame, 0.35 * previous), 0, 255).astype(np.uint8))
    for b in range(video.centres.shape[1]):
        (x0, y0), (x1, y1) = video.centres[t, b], video.centres[t + 1, b]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", color="white", lw=1.5))
    ax.set_title("A  motion to the next frame")
    ax.set_axis_off()


def draw_extracted(ax, run: Run, t: int, label: str) -> None:
    """Panel B: true trajectory (line) vs readout of the encoder (dots) over a few held-out frames."""
    pred, true = readout_predictions(run), run.video("test").centres
    size = run.cfg.data.image_size
    span = slice(t, min(t + TRAIL, len(true)))
    for b, colour in enumerate(ball_colours(true.shape[1])):
        c = np.array(colour) / 255
        ax.plot(true[span, b, 0], true[span, b, 1], "-", color=c, lw=2, alpha=0.6)
        ax.plot(pred[span, b, 0], pred[span, b, 1], "o", color=c, ms=4, mec="black", mew=0.4)
    frame_axes(ax, size)
    ax.set_title(f"B  {label}: readout (dots) vs truth (lines)")


def draw_errors(ax, runs_by_method: dict[str, list[dict]]) -> None:
    """Panel C: both metrics per method, mean ± std over seeds, with chance and random-init lines."""
    methods = [m for m in FIG1_METHODS if runs_by_method.get(m)]
    width = 0.38
    for k, (metric, name) in enumerate((("readout_l2_px", "joint readout"), ("slot_l2_px", "per-slot"))):
        values = [[r["test"][metric] for r in runs_by_method[m]] for m in methods]
        xs = np.arange(len(methods)) + (k - 0.5) * width
        ax.bar(xs, [np.mean(v) for v in values], width, yerr=[np.std(v) for v in values], capsize=3, label=name)
    evaluations = [r for m in methods for r in runs_by_method[m]]
    ax.axhline(np.mean([r["test"]["chance"]["readout_l2_px"] for r in evaluations]), color="grey", ls="--",
               label="chance")
    ax.axhline(np.mean([r["test"]["random_init"]["slot_l2_px"] for r in evaluations]), color="black", ls=":",
               label="random-init (per-slot)")
    counts = {len(runs_by_method[m]) for m in methods}
    ax.set_xticks(range(len(methods)), methods)
    ax.set_ylabel("mean L2 distance from true centre (px)")
    ax.set_title(f"C  test-video readout error ({'/'.join(map(str, sorted(counts)))} seeds)")
    ax.legend(fontsize=7)


def draw_p_next(ax, run: Run, base: int, letter: str, label: str):
    """Panels D/E: each held-out frame j drawn at its coral-ball position, coloured by P(j | base).

    The base frame is itself a candidate (it is the previous pair's next frame), and a prior that peaks at
    z' = z, like the Gaussian, gives it the highest probability: the ring marks it, so that peak is not
    taken for an error.
    """
    p = p_next(run, base)
    n = len(p)
    coral = run.video("test").centres[:, 0]
    size = run.cfg.data.image_size
    order = np.argsort(p)  # most probable on top
    dots = ax.scatter(coral[order, 0], coral[order, 1], c=p[order], cmap="viridis",
                      norm=Normalize(0, 4 / n, clip=True), s=14)
    ax.plot(*coral[base], "wo", mfc="none", ms=10, mew=1.5, label=f"current (also a candidate: P={p[base]:.2f})",
            path_effects=[patheffects.withStroke(linewidth=3, foreground="black")])  # visible on white too
    ax.plot(*coral[base + 1], "r*", ms=14, mec="white", label="true next")
    frame_axes(ax, size)
    ax.set_title(f"{letter}  P(z'|z), coral ball, {label}")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2, frameon=False)  # off the frame
    bar = ax.figure.colorbar(dots, ax=ax, fraction=0.046, pad=0.04, ticks=[0, 1 / n, 4 / n])
    bar.ax.set_yticklabels(["0", "1/N", "≥4/N"])


def find_runs(cfg) -> dict[str, list[Path]]:
    """Explicit gaussian_run/linear_run/supervised_run, else every seed of the reproduction's layout."""
    explicit = {m: cfg.get(f"{m}_run") for m in FIG1_METHODS}
    if any(explicit.values()):
        missing = [m for m in ("gaussian", "linear") if not explicit[m]]
        if missing:
            raise UserError(f"{missing[0]}_run must be given too (Fig. 1 needs the gaussian and linear runs)")
        return {m: [resolve_run_dir(d)] for m, d in explicit.items() if d}
    found = find_reproduction_runs(cfg.reproduce_dir, cfg.preset, FIG1_METHODS)
    if not found.get("gaussian") or not found.get("linear"):
        raise UserError(f"no finished gaussian and linear runs under {cfg.reproduce_dir}/{cfg.preset}: run "
                        f"`make reproduce`, or pass gaussian_run=DIR linear_run=DIR [supervised_run=DIR]")
    return found


def build_figures(runs: dict[str, list[Path]], base_frame: int) -> dict:
    """name -> matplotlib Figure: fig1a ... fig1e and the combined fig1."""
    gaussian, linear = load_run(runs["gaussian"][0]), load_run(runs["linear"][0])
    n_test = gaussian.video("test").n_frames
    if not 1 <= base_frame < n_test - 1:
        raise UserError(f"base_frame must be from 1 to {n_test - 2} (the held-out video has {n_test} frames)")
    evaluations = {m: [run_record(d) for d in dirs] for m, dirs in runs.items()}
    t = base_frame
    panels = {
        "fig1a": (1, [lambda ax: draw_motion(ax, gaussian.video("test"), t)]),
        "fig1b": (2, [lambda ax: draw_extracted(ax, gaussian, t, "Gaussian f_θ"),
                      lambda ax: draw_extracted(ax, linear, t, "linear f_θ")]),
        "fig1c": (1, [lambda ax: draw_errors(ax, evaluations)]),
        "fig1d": (1, [lambda ax: draw_p_next(ax, gaussian, t, "D", "Gaussian f_θ")]),
        "fig1e": (1, [lambda ax: draw_p_next(ax, linear, t, "E", "linear f_θ")]),
    }
    figures = {}
    for name, (n_axes, drawers) in panels.items():
        fig, axes = plt.subplots(1, n_axes, figsize=(4.6 * n_axes, 4.4), squeeze=False)
        for ax, draw in zip(axes[0], drawers):
            draw(ax)
        figures[name] = fig
    combined, axes = plt.subplots(2, 3, figsize=(15, 9.5))
    drawers = [d for _, ds in panels.values() for d in ds]
    for ax, draw in zip(axes.flat, drawers):
        draw(ax)
    combined.suptitle("Fig. 1 regenerated: moving balls, InfoNCE with Gaussian vs linear f_θ")
    figures["fig1"] = combined
    return figures


def priors_figure(runs: dict[str, list[Path]], base_frame: int):
    """One P(z'|z) panel (as Fig. 1D) per prior, from each prior's first seed; None with fewer than 3 priors."""
    priors = [m for m in runs if m != "supervised"]
    if len(priors) < 3:
        return None
    columns = 4
    rows = -(-len(priors) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 4.4 * rows), squeeze=False)
    for ax, prior in zip(axes.flat, priors):
        draw_p_next(ax, load_run(runs[prior][0]), base_frame, "", prior)
    for ax in list(axes.flat)[len(priors):]:
        ax.set_axis_off()
    fig.suptitle("P(z'|z) for the coral ball's next position, one panel per prior (test video)")
    return fig


def figure1(cfg, out_dir) -> list[Path]:
    runs = find_runs(cfg)
    figures = build_figures(runs, cfg.base_frame)
    if not any(cfg.get(f"{m}_run") for m in FIG1_METHODS):
        every_prior = {m: [d for d in dirs if (d / EVALUATION).exists()]  # finished and evaluated only
                       for m, dirs in find_reproduction_runs(cfg.reproduce_dir, cfg.preset).items()}
        every_prior = {m: dirs for m, dirs in every_prior.items() if dirs}
        if (fig := priors_figure(every_prior, cfg.base_frame)) is not None:
            figures["priors"] = fig
    return [path for name, fig in figures.items() for path in save_figure(fig, Path(out_dir) / name)]
