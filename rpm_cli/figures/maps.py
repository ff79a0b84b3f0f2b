"""Pictures of what one run's maps do, as plain functions of plain objects (`rpm evaluate`, `rpm figures`).

maps.png: held-out frames with each map overlaid, then each map alone with its centre of mass (x) and the true
ball centres (dots). A GIF of the held-out video with each slot's readout position drawn as a ring. A grid of
one tile per sweep run.

Coordinates are the video's continuous pixel units: pixel column i covers [i, i + 1).
"""
import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.colors import LinearSegmentedColormap
from PIL import Image, ImageDraw

from rpm_cli.atomic import atomic_path
from rpm_cli.data.balls import ball_colours
from rpm_cli.models.encoder import centre_of_mass
from rpm_cli.plotting import plt, save_png
from rpm_cli.readout import best_assignment, fit_affine, predict_affine, slot_costs

UNMATCHED = (255, 255, 255)  # the colour of a slot matched to no ball
FLAT_RANGE = 0.05  # a map whose values span less than this over a frame is flagged as flat ("dead")


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
    return save_png(maps_figure(encoder, frames, centres, colours, title, frame_numbers), out_path)


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
    return save_png(sweep_maps_figure(tiles, columns, title), out_path)
