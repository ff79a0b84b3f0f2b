"""A run's own pictures, written into its dir: curves.png, and what suits its data: for images maps.png and
tracking.gif (test video), for vectors latents.png (test pairs)."""
from pathlib import Path

import numpy as np

from rpm_cli.figures.curves import draw_curves
from rpm_cli.figures.latents import draw_latent_scatter
from rpm_cli.figures.maps import draw_maps, slot_colours, slot_positions_px, write_tracking_gif
from rpm_cli.runs import Run

MAP_FRAMES = 5      # held-out frames shown in maps.png
GIF_FRAMES = 100


def map_frame_indices(n_frames: int, count: int = MAP_FRAMES) -> np.ndarray:
    return np.linspace(0, n_frames - 1, count + 2).round().astype(int)[1:-1]


def _curves(run: Run) -> Path:
    return draw_curves(run.metrics, run.starts, run.run_dir / "curves.png", batch_size=run.cfg.trainer.batch_size,
                       objective=type(run.model.objective), loss_reduction=run.cfg.trainer.loss_reduction,
                       title=str(run.run_dir))


def run_pictures(run: Run) -> list[Path]:
    if run.dataset.observation != "image":
        return [_curves(run), draw_latent_scatter(run.latents("test"), run.split("test").latents,
                                                  run.run_dir / "latents.png", title=f"{run.run_dir.name}: test pairs")]
    test, train = run.video("test"), run.video("train")
    positions, matches = slot_positions_px(run.latents("test"), run.latents("train"), train.centres, test.centres)
    colours = slot_colours(matches, run.cfg.encoder.n_maps, n_balls=run.cfg.data.n_balls)
    shown = map_frame_indices(test.n_frames)
    paths = [
        _curves(run),
        draw_maps(run.encoder, test.frames[shown], test.centres[shown], run.run_dir / "maps.png", colours=colours,
                  title=f"{run.run_dir.name}: maps on the test video", frame_numbers=[int(i) for i in shown]),
    ]
    gif = write_tracking_gif(test.frames, test.centres, positions, matches, run.run_dir / "tracking.gif",
                             max_frames=GIF_FRAMES)
    return paths + [Path(gif["path"])]
