"""`data=balls`: the moving-balls video of Appendix D as a dataset plug-in (the generator is balls.py).

Each role is one video; its pairs are consecutive frames (t, t + 1); the ground truth is the ball centres in
pixels, scored by the linear readouts of readout.py (Fig. 1C). The training video follows the run's seed,
the validation and test videos are the same for every run.
"""
import numpy as np

from rpm_cli.data.balls import Video, check_feasible, load_video
from rpm_cli.data.base import Dataset, Split, consecutive_pairs, held_out_keys
from rpm_cli.domains import BOOLEAN, SEED, Domain, integer, is_num, now, number, one_of
from rpm_cli.readout import chance_metrics, readout_metrics

MAX_BALLS = 8  # the palette and the pictures are drawn for a handful of balls
MIN_IMAGE_SIZE = 16
MAX_IMAGE_SIZE = 4096
MAX_FRAMES = 1_000_000
FLOAT = 4


def motion_lengthscale_px(centres: np.ndarray) -> float:
    """The θ the simulated motion implies for a Gaussian f_θ on ideal per-ball latents.

    If z holds the ball centres, z' - z stacks each ball's step: E‖z' - z‖² = n_balls · step², spread
    evenly over 2 · n_balls coordinates, so the per-coordinate spread is step / √2 (22.6 px for 32-px
    steps), the θ of the Gaussian N(z'; z, θ² I) closest to the true transition. Measured from the video.
    """
    steps = np.diff(centres, axis=0)
    return float(np.sqrt((steps**2).mean()))


class BallsDataset(Dataset):
    name = "balls"
    observation = "image"
    table = (("readout_l2_px", "readout L2 (px)"), ("slot_l2_px", "slot L2 (px)"))
    sweep_score = ("slot_l2_px", 1)
    unit = "px"
    pairs_key = "data.n_frames - 1"
    memory_keys = "data.image_size, data.n_frames, data.val_frames, data.test_frames or trainer.batch_size"
    # In check order: sizes before what depends on them.
    keys = {
        "image_size": integer(MIN_IMAGE_SIZE, MAX_IMAGE_SIZE),
        "n_balls": integer(1, MAX_BALLS),
        "n_frames": integer(3, MAX_FRAMES),
        "val_frames": integer(3, MAX_FRAMES),
        "test_frames": integer(3, MAX_FRAMES),
        "ball_diameter": Domain(lambda c: "a number > 0 and < data.image_size" + now(c, "data.image_size"),
                                lambda v, c: is_num(v) and 0 < v < c.data.image_size),
        "step": Domain(lambda c: "a number > 0 and <= data.image_size" + now(c, "data.image_size")
                       + " (pixels per frame)", lambda v, c: is_num(v) and 0 < v <= c.data.image_size),
        "heading_noise_deg": number(0, 180),
        "background": one_of("black", "white"),
        "antialias": BOOLEAN,
        "seed": SEED,
        **held_out_keys("video is"),
    }

    def __init__(self, n_frames: int, image_size: int, n_balls: int, ball_diameter: float, step: float,
                 heading_noise_deg: float, background: str, antialias: bool, seed: int, val_seed: int,
                 val_frames: int, test_seed: int, test_frames: int, cache_dir: str | None, prior_lengthscale: float):
        self.cfg = dict(n_frames=n_frames, image_size=image_size, n_balls=n_balls, ball_diameter=ball_diameter,
                        step=step, heading_noise_deg=heading_noise_deg, background=background, antialias=antialias,
                        cache_dir=cache_dir)
        self.roles = {"train": (seed, n_frames), "val": (val_seed, val_frames), "test": (test_seed, test_frames)}
        self.image_size, self.n_balls = image_size, n_balls
        self.ball_diameter, self.background = ball_diameter, background

    @classmethod
    def check_together(cls, cfg) -> None:
        d = cfg.data
        check_feasible(d.image_size, d.n_balls, d.ball_diameter, d.step)  # an InfeasibleVideo is a UserError

    @classmethod
    def training_pairs(cls, data_cfg) -> int:
        return data_cfg.n_frames - 1

    @classmethod
    def memory(cls, cfg) -> dict[str, int]:
        d = cfg.data
        return {"videos": (d.n_frames + d.get("val_frames", 0) + d.test_frames) * 3 * d.image_size**2}

    @property
    def length_unit(self) -> float:
        return self.image_size

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return 3, self.image_size, self.image_size

    @property
    def latent_dim(self) -> int:
        return 2 * self.n_balls

    def video(self, role: str) -> Video:
        seed, n_frames = self.roles[role]
        return load_video(self.cfg, seed=seed, n_frames=n_frames)

    def split(self, role: str) -> Split:
        video = self.video(role)
        return Split(video.frames, video.centres, *consecutive_pairs(video.n_frames))

    def scores(self, z_train, train: Split, z_held, held: Split) -> dict:
        return readout_metrics(z_train, train.latents, z_held, held.latents)

    def chance(self, train: Split, held: Split) -> dict:
        return chance_metrics(train.latents, held.latents)

    def extras(self, train: Split) -> dict:
        return {"motion_lengthscale_px": motion_lengthscale_px(train.latents)}

