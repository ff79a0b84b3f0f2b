"""Pictures of one run (rpm_cli.figures.run_pictures): curves, maps, tracking GIF, sweep grid. Tiny and fast."""
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from rpm_cli.data.balls import render, simulate
from rpm_cli.plotting import plt
from rpm_cli.figures.curves import curves_figure, draw_curves, learned_parameters
from rpm_cli.figures.maps import draw_maps, draw_sweep_maps, maps_figure, slot_positions_px, sweep_maps_figure, write_tracking_gif
from rpm_cli.models.encoder import CentreOfMassEncoder, centre_of_mass

SIZE, N_BALLS, DIAMETER = 64, 2, 12


def _video(seed: int, n_frames: int):
    centres = simulate(n_frames, SIZE, N_BALLS, DIAMETER, step=2.0, heading_noise_deg=10.0, seed=seed)
    return render(centres, SIZE, DIAMETER), centres.astype(np.float32)


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return CentreOfMassEncoder(n_maps=2, map_bias_init=-8.0)


@pytest.fixture(scope="module")
def videos():
    return _video(seed=0, n_frames=60), _video(seed=1, n_frames=60)


@torch.no_grad()
def _latents(encoder, frames):
    encoder.eval()
    return centre_of_mass(encoder.feature_maps(torch.from_numpy(frames))).double().numpy() * SIZE


def _png_size(path):
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def _metrics(epochs=6, supervised=False, held_out=False):
    lines = []
    for e in range(1, epochs + 1):
        line = {"epoch": e, "loss": 4.0 / e, "seconds": 1.5, "frames_per_s": 1000.0}
        if not supervised:
            line |= {"lengthscale_px": 10.0 - e, "infonce_bound": 0.5 * e, "batch_size": 64}
        if held_out and e % 2 == 0:
            line |= {"val_slot_l2_px": 20.0 / e, "val_readout_l2_px": 10.0 / e}
        lines.append(line)
    return lines


def test_learned_parameters_skip_bookkeeping_and_held_out_keys():
    metrics = [{"epoch": 1, "loss": 1.0, "seconds": 2.0, "frames_per_s": 3.0, "infonce_bound": 0.1,
                "infonce_estimate": 0.2, "batch_size": 64, "val_slot_l2_px": 5.0, "lengthscale_px": 9.0,
                "weight_norm": 1.5, "finished": True, "note": "x"}]
    assert learned_parameters(metrics) == ["lengthscale_px", "weight_norm"]
    assert learned_parameters([{"epoch": 1, "loss": 1.0, "negatives": 63, "dof": 4.0}]) == ["dof"]


def test_curves_ceiling_from_logged_negatives():
    metrics = [{"epoch": e, "loss": 4.0 - e, "seconds": 1.0, "frames_per_s": 1.0, "negatives": 31} for e in (1, 2)]
    fig = curves_figure(metrics)
    assert any(f"{math.log(31):.2f}" in lab for lab in fig.axes[0].get_legend_handles_labels()[1])
    plt.close(fig)


@pytest.mark.parametrize("case", ["plain", "restarts", "supervised"])
def test_curves(tmp_path, case):
    starts = None
    if case == "restarts":
        starts = {"chosen": 1, "starts": [{"start": i, "seed": 10 + i, "losses": [4.2 - 0.1 * i, 4.1 - 0.3 * i]}
                                          for i in range(3)]}
    metrics = _metrics(supervised=case == "supervised", held_out=case == "restarts")
    objective = "supervised" if case == "supervised" else "infonce"

    fig = curves_figure(metrics, starts, batch_size=64, objective=objective)
    axes = fig.axes
    assert len(axes) == (3 if case == "restarts" else 2)
    loss_ax = axes[0]
    labels = loss_ax.get_legend_handles_labels()[1]
    if case == "supervised":
        assert loss_ax.get_ylabel() == "MSE loss" and not any("log N" in lab for lab in labels)
        assert any("no learned parameters" in t.get_text() for t in axes[1].texts)
    else:
        ceiling = [lab for lab in labels if lab.startswith("log N")]
        assert ceiling and f"{math.log(63):.2f}" in ceiling[0] and "InfoNCE" in loss_ax.get_ylabel()
        assert len(axes[1].get_lines()) == 1  # θ only
    if case == "restarts":  # two grey other starts + the chosen curve (+ its marker) + the log N line
        grey = [ln for ln in loss_ax.get_lines() if ln.get_color() == "0.6"]
        assert len(grey) == 2
        assert len(axes[2].get_lines()) == 2  # slot and joint L2
    plt.close(fig)

    path = draw_curves(metrics, starts, tmp_path / "curves.png", batch_size=64, objective=objective)
    assert path == tmp_path / "curves.png" and not (tmp_path / "curves.pdf").exists()
    w, h = _png_size(path)
    assert 500 < w < 2500 and 250 < h < 1000


def test_maps(tmp_path, encoder, videos):
    (frames, centres), _ = videos
    k = 4
    fig = maps_figure(encoder, frames[:k], centres[:k])
    assert len(fig.axes) == k * (2 + encoder.n_maps)
    titles = [ax.get_title() for ax in fig.axes]
    # A fresh encoder with map_bias_init=-8 has flat maps near sigmoid(-8): the titles say so.
    assert sum("FLAT" in t for t in titles) == k * encoder.n_maps
    assert sum("of mass on balls" in t for t in titles) == k * encoder.n_maps
    plt.close(fig)

    encoder.train()
    path = draw_maps(encoder, frames[:k], centres[:k], tmp_path / "maps.png")
    assert encoder.training  # draw_maps put it back in the mode it found it in
    w, h = _png_size(path)
    assert 400 < w < 2000 and 400 < h < 2500 and h > w  # four rows, four columns plus titles
    one_row = draw_maps(encoder, frames[:1], centres[:1], tmp_path / "maps-row.png",
                        colours=[(255, 255, 255), (0, 255, 0)])
    w1, h1 = _png_size(one_row)
    assert w1 > h1


def _ring_centroid(frame_rgb: np.ndarray, rgb, tolerance=40):
    close = np.abs(frame_rgb.astype(int) - np.array(rgb)).max(axis=-1) <= tolerance
    ys, xs = np.nonzero(close)
    return (xs.mean() + 0.5, ys.mean() + 0.5), len(xs)  # pixel i covers [i, i + 1)


@pytest.mark.parametrize("max_side", [128, 32])
def test_tracking_gif(tmp_path, encoder, videos, max_side):
    (train_frames, c_train), (test_frames, c_test) = videos
    z_train, z_test = _latents(encoder, train_frames), _latents(encoder, test_frames)
    positions, matches = slot_positions_px(z_test, z_train, c_train, c_test)
    assert positions.shape == (len(test_frames), 2, 2) and len(matches) == 2
    assert sorted(b for _, b in matches) == [0, 1]

    # Start the GIF at the first frame whose rings lie clear of the frame's edges and of each other (an edge
    # or a crossing ring hides part of a ring and shifts its centroid), so the check below runs on every ring.
    expected_side = min(SIZE, max_side)
    # The default ring radius is 2.5 px outside a ball; the half-size GIF is drawn with a smaller one.
    ring = DIAMETER / 2 + 2.5 if expected_side == SIZE else 3.5
    margin = (ring + 1) * SIZE / expected_side
    apart = np.linalg.norm(positions[:, 0] - positions[:, 1], axis=-1) > 2 * margin
    clear = np.all((positions >= margin) & (positions <= SIZE - margin), axis=(1, 2)) & apart
    assert clear.any()
    t0 = int(np.argmax(clear))
    # Ring colours that appear nowhere in the video (its balls are coral and blue): pure green and magenta.
    ring_colours = [(0, 255, 0), (255, 0, 255)]
    info = write_tracking_gif(test_frames[t0:], c_test[t0:], positions[t0:], matches, tmp_path / "tracking.gif",
                              max_frames=30, max_side=max_side, colours=ring_colours,
                              ring_radius=None if expected_side == SIZE else ring)
    path = info["path"]
    assert path.stat().st_size < 3e6
    with Image.open(path) as gif:
        assert gif.n_frames == info["n_frames"] == min(30, len(test_frames) - t0)
        assert gif.size == (expected_side, expected_side)
        first = np.asarray(gif.convert("RGB"))
    assert math.isclose(info["scale"], expected_side / SIZE)
    assert np.allclose(info["rings"], positions[t0] * info["scale"])

    for k, b in matches:
        x, y = info["rings"][k]
        (cx, cy), count = _ring_centroid(first, ring_colours[b])
        assert count >= 8
        assert math.hypot(cx - x, cy - y) <= 2.0, (k, b, (cx, cy), (x, y))


def test_tracking_gif_unmatched_slot_is_white_and_size_bound(tmp_path):
    centres = simulate(100, 256, 3, 16, step=3.0, heading_noise_deg=10.0, seed=3)
    frames = render(centres, 256, 16)
    # Slot 0 follows ball 0; slot 1 is matched to no ball and sits still, far from every ball in frame 0.
    grid = np.stack(np.meshgrid(np.arange(40, 217, 8.0), np.arange(40, 217, 8.0)), -1).reshape(-1, 2)
    spot = grid[np.linalg.norm(grid[:, None] - centres[0][None], axis=-1).min(axis=1).argmax()]
    positions = np.stack([centres[:, 0], np.broadcast_to(spot, (100, 2))], axis=1)
    info = write_tracking_gif(frames, centres, positions, [(0, 0)], tmp_path / "big.gif")
    assert info["n_frames"] == 100 and info["scale"] == 0.5
    assert info["path"].stat().st_size < 3e6
    with Image.open(info["path"]) as gif:
        first = np.asarray(gif.convert("RGB"))
    x, y = info["rings"][1]
    assert np.allclose((x, y), spot / 2)
    # White pixels near the spot: the unmatched ring (the true-centre dots' white rims lie on the far balls).
    ys, xs = np.nonzero(np.abs(first.astype(int) - 255).max(axis=-1) <= 10)
    near = np.hypot(xs + 0.5 - x, ys + 0.5 - y) < 12
    assert near.sum() >= 8
    assert math.hypot(xs[near].mean() + 0.5 - x, ys[near].mean() + 0.5 - y) <= 2.0


def test_sweep_grid(tmp_path):
    rng = np.random.default_rng(0)
    tiles = [("prior.lengthscale=0.05", Image.fromarray(rng.integers(0, 255, (60, 300, 3), dtype=np.uint8))),
             ("prior.lengthscale=0.1", rng.integers(0, 255, (60, 300, 3), dtype=np.uint8)),
             ("trainer.lr=0.01 seed=2", rng.random((60, 300, 3)))]
    fig = sweep_maps_figure(tiles)
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in titled] == [label for label, _ in tiles]
    plt.close(fig)
    path = draw_sweep_maps(tiles, tmp_path / "sweep-maps.png")
    w, h = _png_size(path)
    assert 300 < w < 3000 and 200 < h < 3000
    fig = sweep_maps_figure(tiles, columns=3)
    assert len(fig.axes) == 3 and len({round(ax.get_position().y0, 3) for ax in fig.axes}) == 1
    plt.close(fig)


def test_pictures_are_current_only_when_all_were_drawn_after_the_last_checkpoint(tmp_path):
    from rpm_cli.layout import pictures_current

    (tmp_path / "checkpoint.pt").write_bytes(b"")
    os.utime(tmp_path / "checkpoint.pt", ns=(10**18, 10**18))
    for name in ("curves.png", "maps.png"):
        (tmp_path / name).write_bytes(b"")
    assert not pictures_current(tmp_path)                     # tracking.gif missing
    (tmp_path / "tracking.gif").write_bytes(b"")
    assert pictures_current(tmp_path)
    os.utime(tmp_path / "checkpoint.pt", ns=(2 * 10**18, 2 * 10**18))  # the run trained on since (resume)
    assert not pictures_current(tmp_path)
    (tmp_path / "tracking.gif").unlink()
    (tmp_path / "latents.png").write_bytes(b"")               # a vector dataset's pair: curves and latents
    os.utime(tmp_path / "curves.png", ns=(3 * 10**18, 3 * 10**18))
    os.utime(tmp_path / "latents.png", ns=(3 * 10**18, 3 * 10**18))
    assert pictures_current(tmp_path)
