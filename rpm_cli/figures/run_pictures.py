"""Pictures of what one run learned, as plain functions of plain objects (`rpm evaluate`, `rpm figures`).

curves.png: the training loss per epoch (every restart's curve, the chosen one continued), the learned prior
parameters per epoch and the held-out L2 per epoch where the run logged it. maps.png: held-out frames with
each map overlaid, then each map alone with its centre of mass (x) and the true ball centres (dots). A GIF of
the held-out video with each slot's readout position drawn as a ring. A grid of one tile per sweep run.

Coordinates are the video's continuous pixel units: pixel column i covers [i, i + 1).
"""
import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.ticker import FormatStrFormatter
from PIL import Image, ImageDraw

from rpm_cli.atomic import atomic_path
from rpm_cli.data.balls import ball_colours
from rpm_cli.plotting import plt, save_figure
from rpm_cli.models.encoder import centre_of_mass
from rpm_cli.readout import best_assignment, fit_affine, predict_affine, slot_costs

# metrics.jsonl keys that are not learned prior parameters (val_* keys are held-out scores, also not).
NON_PARAMETER_KEYS = frozenset({"epoch", "loss", "seconds", "frames_per_s", "infonce_bound", "infonce_estimate",
                                "batch_size", "negatives", "lr", "step", "steps"})
PARAMETER_LABELS = {"lengthscale_px": "θ (px)", "weight_norm": "‖W‖", "dof": "ν (dof)", "temperature": "τ",
                    "offset_px": "‖offset‖ (px)", "transition_dev": "‖A − I‖"}
HELD_OUT_LABELS = {"val_slot_l2_px": "slot L2 (each map → its ball)", "val_readout_l2_px": "joint L2 (all of z)"}
UNMATCHED = (255, 255, 255)  # the colour of a slot matched to no ball
FLAT_RANGE = 0.05  # a map whose values span less than this over a frame is flagged as flat ("dead")


def _png_stem(out_path) -> Path:
    out_path = Path(out_path)
    return out_path.with_suffix("") if out_path.suffix.lower() == ".png" else out_path


def _save_png(fig, out_path) -> Path:
    return save_figure(fig, _png_stem(out_path), formats=("png",))[0]


# ---------------------------------------------------------------------------------------------- curves


def learned_parameters(metrics: list[dict]) -> list[str]:
    """The learned prior parameters logged per epoch: every numeric key that is not a known non-parameter,
    in order of first appearance."""
    keys = []
    for line in metrics:
        for key, value in line.items():
            if (key not in keys and key not in NON_PARAMETER_KEYS and not key.startswith("val_")
                    and isinstance(value, (int, float)) and not isinstance(value, bool)):
                keys.append(key)
    return keys


def held_out_keys(metrics: list[dict]) -> list[str]:
    """The held-out scores logged per epoch (val_*_px), the slot and joint L2 first."""
    present = {k for line in metrics for k in line if k.startswith("val_") and k.endswith("_px")}
    return [k for k in HELD_OUT_LABELS if k in present] + sorted(present - set(HELD_OUT_LABELS))


def _series(metrics: list[dict], key: str, scale: float = 1.0) -> tuple[list, list]:
    pairs = [(m["epoch"], m[key] * scale) for m in metrics
             if isinstance(m.get(key), (int, float)) and math.isfinite(m[key])]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _draw_loss(ax, metrics, starts, batch_size, objective, per_pair) -> None:
    supervised = objective == "supervised"
    chosen = starts.get("chosen") if starts else None
    for s in (starts or {}).get("starts", []):
        if s.get("start") == chosen:
            continue
        losses = np.asarray(s["losses"], float) * per_pair
        ax.plot(np.arange(1, len(losses) + 1), losses, color="0.6", lw=0.8, alpha=0.8,
                label="other starts" if "other starts" not in ax.get_legend_handles_labels()[1] else None)
    epochs, loss = _series(metrics, "loss", per_pair)
    label = f"chosen start ({chosen}) and its continuation" if starts else "training loss"
    ax.plot(epochs, loss, color="C0", lw=1.8, label=label)
    if starts:
        chosen_losses = next((s["losses"] for s in starts.get("starts", []) if s.get("start") == chosen), None)
        if chosen_losses:
            at = len(chosen_losses)
            ax.plot([at], [chosen_losses[-1] * per_pair], "o", color="C0", ms=6, mfc="white", mew=1.5)
            ax.axvline(at, color="0.4", ls=":", lw=0.8)
            ax.annotate("start chosen", (at, 0), xycoords=("data", "axes fraction"), xytext=(3, 4),
                        textcoords="offset points", fontsize=7, color="0.3")
    if not supervised and batch_size and batch_size > 2:
        ceiling = math.log(batch_size - 1)
        ax.axhline(ceiling, color="C3", ls="--", lw=1,
                   label=f"log N = {ceiling:.2f} (N = B − 1 = {batch_size - 1} negatives; I_N = 0)")
    ax.set_xlabel("epoch")
    if supervised:
        ax.set_ylabel("MSE loss")
        ax.set_title("supervised MSE loss")
        if loss and min(loss) > 0 and max(loss) / min(loss) > 30:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    else:
        ax.set_ylabel("InfoNCE loss" + (" per pair" if per_pair != 1.0 else ""))
        ax.set_title("InfoNCE loss (log N − I_N)")
    ax.legend(fontsize=7, loc="best")


def _draw_parameters(ax, metrics) -> None:
    keys = learned_parameters(metrics)
    if not keys:
        ax.text(0.5, 0.5, "no learned parameters", ha="center", va="center", transform=ax.transAxes,
                fontsize=10, color="0.4")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("learned prior parameters")
        return
    values = []
    for i, key in enumerate(keys):
        epochs, ys = _series(metrics, key)
        values += ys
        ax.plot(epochs, ys, marker="." if len(ys) < 30 else None, color=f"C{i + 1}",
                label=PARAMETER_LABELS.get(key, key))
    if values and min(values) > 0 and max(values) / min(values) > 100:
        ax.set_yscale("log")  # parameters on very different scales share the axis
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.set_xlabel("epoch")
    ax.set_ylabel(PARAMETER_LABELS.get(keys[0], keys[0]) if len(keys) == 1 else "value")
    ax.set_title("learned prior parameters")
    ax.legend(fontsize=7, loc="best")


def _draw_held_out(ax, metrics, keys) -> None:
    for i, key in enumerate(keys):
        epochs, ys = _series(metrics, key)
        ax.plot(epochs, ys, marker="o", ms=3, color=f"C{i + 4}", label=HELD_OUT_LABELS.get(key, key))
    ax.set_xlabel("epoch")
    ax.set_ylabel("held-out mean L2 (px)")
    ax.set_ylim(bottom=0)
    ax.set_title("held-out readout error")
    ax.legend(fontsize=7, loc="best")


def curves_figure(metrics: list[dict], starts: dict | None = None, *, batch_size: int | None = None,
                  objective: str = "infonce", loss_reduction: str = "mean", title: str | None = None):
    """The figure of draw_curves (the caller saves or closes it). Panels: loss, learned parameters and, when
    metrics holds val_*_px scores, held-out L2.

    `objective` is "infonce" or "supervised" (an MSE loss: no log N line). `batch_size` B gives the InfoNCE
    ceiling log N, N = B - 1 (else a logged "batch_size" or "negatives" key is used). With loss_reduction="sum" the logged
    losses are B times the per-pair loss and are divided by B so they compare with log N.
    """
    if batch_size is None:  # from the logged batch size, or the logged number of negatives N = B - 1
        logged = [int(m["batch_size"]) if isinstance(m.get("batch_size"), (int, float)) else int(m["negatives"]) + 1
                  for m in metrics if isinstance(m.get("batch_size", m.get("negatives")), (int, float))]
        batch_size = logged[0] if logged else None
    per_pair = 1.0 / batch_size if loss_reduction == "sum" and batch_size else 1.0
    held_out = held_out_keys(metrics)
    n_panels = 3 if held_out else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(4.6 * n_panels, 3.6), squeeze=False)
    axes = axes[0]
    _draw_loss(axes[0], metrics, starts, batch_size, objective, per_pair)
    _draw_parameters(axes[1], metrics)
    if held_out:
        _draw_held_out(axes[2], metrics, held_out)
    for ax, letter in zip(axes, "abc"):
        ax.text(-0.1, 1.04, f"({letter})", transform=ax.transAxes, fontsize=10, fontweight="bold")
        ax.grid(alpha=0.25)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def draw_curves(metrics: list[dict], starts: dict | None, out_path, *, batch_size: int | None = None,
                objective: str = "infonce", loss_reduction: str = "mean", title: str | None = None) -> Path:
    """curves.png from a run's metrics.jsonl lines and starts.json (or None); see curves_figure."""
    fig = curves_figure(metrics, starts, batch_size=batch_size, objective=objective,
                        loss_reduction=loss_reduction, title=title)
    return _save_png(fig, out_path)


# ------------------------------------------------------------------------------------------------- maps


def slot_colours(matches, n_slots: int, colours=None, n_balls: int | None = None) -> list[tuple[int, int, int]]:
    """Each slot's colour: its matched ball's colour (default: the video's ball colours), white if unmatched."""
    if colours is None:
        n = n_balls if n_balls is not None else 1 + max((b for _, b in matches), default=-1)
        colours = ball_colours(max(n, 1))
    out = [UNMATCHED] * n_slots
    for k, b in matches:
        out[int(k)] = tuple(int(c) for c in colours[int(b)])
    return out


@torch.no_grad()
def _maps_and_centres(encoder, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode maps (K, M, H, W) and their centres of mass (K, M, 2) in pixels; restores the mode after."""
    was_training = encoder.training
    encoder.eval()
    try:
        device = next(encoder.parameters()).device
        maps = encoder.feature_maps(torch.from_numpy(np.ascontiguousarray(frames)).to(device)).float()
        com = centre_of_mass(maps)
    finally:
        encoder.train(was_training)
    k, m, h, w = maps.shape
    centres = com.reshape(k, m, 2).cpu().double().numpy() * np.array([w, h])
    return maps.cpu().numpy(), centres


def _nearest_ball_matches(map_centres: np.ndarray, true_centres: np.ndarray) -> list[tuple[int, int]]:
    cost = np.linalg.norm(map_centres[:, :, None, :] - true_centres[:, None, :, :], axis=-1).mean(axis=0)
    return best_assignment(cost)


def _image_axes(ax, w: int, h: int) -> None:
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([])
    ax.set_yticks([])


def _mark_centres(ax, true_centres, ball_rgb, map_centres=None, map_rgb=None) -> None:
    for (x, y), rgb in zip(true_centres, ball_rgb):
        ax.plot(x, y, "o", ms=4, mfc=np.array(rgb) / 255, mec="black", mew=0.8)
    if map_centres is not None:
        for (x, y), rgb in zip(map_centres, map_rgb):
            ax.plot(x, y, "x", ms=7, mew=3.2, color="black")  # a dark halo keeps the cross visible anywhere
            ax.plot(x, y, "x", ms=7, mew=1.6, color=np.array(rgb) / 255)


def maps_figure(encoder, frames: np.ndarray, centres: np.ndarray, colours=None, title: str | None = None,
                frame_numbers=None):
    """The figure of draw_maps (the caller saves or closes it): one row per frame."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (K, 3, H, W), got {frames.dtype} {frames.shape}")
    maps, map_centres = _maps_and_centres(encoder, frames)
    k, m, h, w = maps.shape
    n_balls = centres.shape[1]
    ball_rgb = ball_colours(n_balls)
    if colours is None:
        colours = slot_colours(_nearest_ball_matches(map_centres, centres), m, ball_rgb)
    colours = [tuple(int(c) for c in rgb) for rgb in colours]
    on_balls = frames.max(axis=1) > 0  # every pixel a ball covers at all (the background is black)

    n_cols = 2 + m
    fig, axes = plt.subplots(k, n_cols, figsize=(2.1 * n_cols, 2.25 * k + 0.4), squeeze=False)
    extent = (0, w, h, 0)
    for row in range(k):
        rgb = frames[row].transpose(1, 2, 0)
        ax = axes[row, 0]
        ax.imshow(rgb, extent=extent, interpolation="nearest")
        _mark_centres(ax, centres[row], ball_rgb)
        number = row if frame_numbers is None else frame_numbers[row]
        ax.set_title(f"frame {number}" if k > 1 or frame_numbers is not None else "frame", fontsize=8)
        ax.set_ylabel(f"held-out frame {number}", fontsize=8)

        overlay = 0.45 * rgb.astype(float) / 255  # the frame dimmed, each map painted over it by its value
        for j in range(m):
            alpha = maps[row, j][..., None]
            overlay = overlay * (1 - alpha) + alpha * np.array(colours[j]) / 255
        ax = axes[row, 1]
        ax.imshow(np.clip(overlay, 0, 1), extent=extent, interpolation="nearest")
        _mark_centres(ax, centres[row], ball_rgb, map_centres[row], colours)
        ax.set_title("maps over frame", fontsize=8)

        for j in range(m):
            ax = axes[row, 2 + j]
            cmap = LinearSegmentedColormap.from_list(f"map{j}", [(0, 0, 0), np.array(colours[j]) / 255])
            ax.imshow(maps[row, j], cmap=cmap, vmin=0.0, vmax=1.0, extent=extent, interpolation="nearest")
            _mark_centres(ax, centres[row], ball_rgb, map_centres[row, j:j + 1], [(255, 255, 255)])
            mass = maps[row, j].sum()
            fraction = maps[row, j][on_balls[row]].sum() / mass if mass > 0 else 0.0
            lo, hi = float(maps[row, j].min()), float(maps[row, j].max())
            flat = "  FLAT" if hi - lo < FLAT_RANGE else ""
            ax.set_title(f"map {j}: max {hi:.2g}{flat}\n{100 * fraction:.0f}% of mass on balls", fontsize=8,
                         color="C3" if flat else "black")
    for ax in axes.flat:
        _image_axes(ax, w, h)
    fig.suptitle((title + "\n" if title else "") + "maps on a fixed 0–1 scale · x: map's centre of mass · "
                 "dots: true ball centres", fontsize=9)
    fig.tight_layout()
    return fig


def draw_maps(encoder, frames: np.ndarray, centres: np.ndarray, out_path, colours=None,
              title: str | None = None, frame_numbers=None) -> Path:
    """maps.png for K held-out frames (uint8 (K, 3, H, W)) and their true centres ((K, n_balls, 2) px).

    `colours`: one RGB per map (e.g. slot_colours(matches, n_maps) from slot_positions_px); by default each
    map takes the colour of the ball nearest its centre of mass over these frames. K = 1 gives a one-row
    tile for draw_sweep_maps. `frame_numbers` label the rows with the frames' numbers in their video.
    """
    return _save_png(maps_figure(encoder, frames, centres, colours, title, frame_numbers), out_path)


# ---------------------------------------------------------------------------------------- tracking GIF


def slot_positions_px(z_test_px: np.ndarray, z_train_px: np.ndarray, c_train: np.ndarray,
                      c_test: np.ndarray | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Each slot's readout position on the test video, (N, n_slots, 2) px, and the (slot, ball) matches.

    Slot k (z columns 2k, 2k + 1) is matched to ball b by the least-total-cost assignment over
    rpm_cli.readout.slot_costs: the held-out costs when c_test is given (as the slot L2 metric), otherwise
    the training costs. A matched slot's position is its affine readout fitted to ball b on the training
    video, applied to z_test; an unmatched slot's is its raw centre of mass (z is in pixels).
    """
    z_test_px, z_train_px = np.asarray(z_test_px, np.float64), np.asarray(z_train_px, np.float64)
    if c_test is None:
        cost = slot_costs(z_train_px, c_train, z_train_px, c_train)
    else:
        cost = slot_costs(z_train_px, c_train, z_test_px, c_test)
    matches = sorted((int(k), int(b)) for k, b in best_assignment(cost))
    n_slots = z_test_px.shape[1] // 2
    positions = z_test_px.reshape(len(z_test_px), n_slots, 2).copy()
    for k, b in matches:
        weights = fit_affine(z_train_px[:, 2 * k:2 * k + 2], c_train[:, b])
        positions[:, k] = predict_affine(weights, z_test_px[:, 2 * k:2 * k + 2])
    return positions, matches


def write_tracking_gif(frames: np.ndarray, true_centres: np.ndarray, slot_positions: np.ndarray,
                       slot_to_ball, path, max_frames: int = 100, max_side: int = 128, duration_ms: int = 80,
                       colours=None, ring_radius: float | None = None) -> dict:
    """A GIF of the first max_frames frames, downscaled to at most max_side pixels a side: each slot's
    readout position as a ring in its matched ball's colour (white if unmatched), each true centre as a small
    black dot with a white rim.

    `colours`: the ring colour of each ball (default: the video's ball colours). `ring_radius` in GIF pixels
    (default: 2.5 px more than a ball's radius, estimated from the first frame's painted area). Returns
    {"path", "n_frames", "scale", "rings"}: rings are the (x, y) ring centres of the first frame in GIF pixels
    (pixel i covers [i, i + 1)), i.e. slot_positions[0] * scale.
    """
    frames = np.asarray(frames)
    n = min(len(frames), int(max_frames))
    if n < 1:
        raise ValueError("no frames to write")
    _, _, h, w = frames.shape
    scale = min(1.0, max_side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    sx, sy = size[0] / w, size[1] / h
    ring_rgb = slot_colours(slot_to_ball, slot_positions.shape[1], colours, n_balls=true_centres.shape[1])
    if ring_radius is None:  # just outside a ball, whose radius the first frame's painted area gives
        ball_radius = math.sqrt((frames[0].max(axis=0) > 0).sum() / (math.pi * max(1, true_centres.shape[1])))
        ring_radius = max(3.0, ball_radius * sx + 2.5)
    radius = float(ring_radius)
    width = 2 if radius >= 5 else 1

    images, rings = [], []
    for t in range(n):
        image = Image.fromarray(np.ascontiguousarray(frames[t].transpose(1, 2, 0)))
        if size != (w, h):
            image = image.resize(size, Image.Resampling.BOX)  # area average: positions scale exactly
        draw = ImageDraw.Draw(image)
        boxes = []
        for k, (x, y) in enumerate(slot_positions[t]):
            gx, gy = x * sx, y * sy
            if t == 0:
                rings.append((float(gx), float(gy)))
            if np.isfinite(gx) and np.isfinite(gy):
                # PIL addresses pixel centres by integers: continuous coordinate c lies at index c - 0.5.
                cx, cy = gx - 0.5, gy - 0.5
                boxes.append((k, [cx - radius, cy - radius, cx + radius, cy + radius]))
        for _, box in boxes:  # black rims first, on both sides: a ring shows over a ball of its own colour
            draw.ellipse([box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1], outline=(0, 0, 0), width=width + 2)
        for k, box in boxes:
            draw.ellipse(box, outline=ring_rgb[k], width=width)
        for x, y in true_centres[t]:
            cx, cy = x * sx - 0.5, y * sy - 0.5
            draw.ellipse([cx - 1.5, cy - 1.5, cx + 1.5, cy + 1.5], fill=(0, 0, 0), outline=(255, 255, 255))
        images.append(image.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))

    path = Path(path)
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(duration_ms),
                       loop=0, optimize=False)
    with Image.open(path) as written:
        n_written = getattr(written, "n_frames", 1)  # PIL merges identical consecutive frames
    return {"path": path, "n_frames": n_written, "scale": sx, "rings": rings}


# ------------------------------------------------------------------------------------------- sweep grid


def _as_image(tile) -> np.ndarray:
    if isinstance(tile, (str, Path)):
        with Image.open(tile) as im:
            return np.asarray(im.convert("RGB"))
    if isinstance(tile, Image.Image):
        return np.asarray(tile.convert("RGB"))
    return np.asarray(tile)



def sweep_maps_figure(tiles, columns: int | None = None, title: str | None = None):
    """The figure of draw_sweep_maps (the caller saves or closes it)."""
    if not tiles:
        raise ValueError("no tiles to draw")
    images = [(label, _as_image(tile)) for label, tile in tiles]
    aspect = float(np.mean([im.shape[1] / im.shape[0] for _, im in images]))  # width / height
    n = len(images)
    if columns is None:  # a roughly square grid of (possibly wide) tiles
        columns = min(n, max(1, round(math.sqrt(n / aspect))))
    rows = math.ceil(n / columns)
    tile_w = 4.0 if aspect < 2 else 7.0
    fig, axes = plt.subplots(rows, columns, figsize=(tile_w * columns, rows * (tile_w / aspect + 0.45)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (label, image) in zip(axes.flat, images):
        ax.imshow(image, interpolation="antialiased")
        ax.set_title(label or "(defaults)", fontsize=8, wrap=True)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def draw_sweep_maps(tiles, out_path, columns: int | None = None, title: str | None = None) -> Path:
    """A grid of one image per run, labelled by its overrides string: tiles = [(label, PIL image, array or
    path), ...], e.g. each run's draw_maps drawn for one frame."""
    return _save_png(sweep_maps_figure(tiles, columns, title), out_path)
