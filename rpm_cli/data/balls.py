"""The moving-balls video of Appendix D: simulate trajectories, render frames, cache on disk.

Coordinates are continuous pixel units: pixel column i covers [i, i + 1), so its centre is at i + 0.5.
Ball centres are stored as (x, y) = (horizontal, vertical) in those units.
"""
import colorsys
import math
from dataclasses import dataclass

import numpy as np

from rpm_cli.data import cache
from rpm_cli.errors import UserError

GENERATOR_VERSION = 1  # bump when the simulation or rendering changes, so old caches are not reused
CORAL = (255, 127, 80)  # the first ball, as in Fig. 1D
PALETTE = [CORAL, (64, 128, 255), (96, 224, 96), (255, 215, 0), (200, 80, 255), (0, 210, 210)]
MAX_TRIES_PER_MOVE = 2000  # after the noise range reaches ±180°, tries are uniform over all headings
MAX_PLACEMENT_TRIES = 10_000
MAX_FRAME_REDRAWS = 100  # redraws of a whole frame's moves when a ball stays jammed
# The most of the frame the balls' bounding squares may cover. Measured with `simulate` (300 frames, seeds
# 10-15, step = diameter, frames of 16-64 px): crowds covering 0.44 and 0.5 of the frame jammed, none at 0.38
# or below; the margin keeps the rule from sitting on that edge.
MAX_COVERED_FRACTION = 0.35
GEOMETRY_KEYS = "data.n_balls, data.image_size, data.ball_diameter, data.step"


class InfeasibleVideo(UserError):
    """The requested video cannot be generated (balls do not fit, or they jam): a user error, exit code 2.

    The message names the keys that decide it, whichever command met it (train, evaluate, figures)."""

    def __init__(self, reason: str):
        super().__init__(f"{GEOMETRY_KEYS}: {reason}; use fewer or smaller balls, a larger frame or a shorter step")


@dataclass(frozen=True)
class Video:
    frames: np.ndarray  # (n_frames, 3, H, W) uint8
    centres: np.ndarray  # (n_frames, n_balls, 2) float32, (x, y) in pixels

    @property
    def n_frames(self) -> int:
        return self.frames.shape[0]


def ball_colours(n_balls: int) -> list[tuple[int, int, int]]:
    extra = [colorsys.hsv_to_rgb((0.61803 * k) % 1.0, 0.8, 1.0) for k in range(max(0, n_balls - len(PALETTE)))]
    return (PALETTE + [tuple(int(255 * c) for c in rgb) for rgb in extra])[:n_balls]


def check_feasible(image_size: int, n_balls: int, diameter: float, step: float) -> None:
    """Refuse, before any work, the geometries the generator cannot (or only by luck can) produce."""
    if image_size < 1 or n_balls < 1 or diameter <= 0 or step <= 0:
        raise InfeasibleVideo("image_size, n_balls, ball_diameter and step must all be positive")
    if diameter >= image_size:
        raise InfeasibleVideo(f"ball_diameter ({diameter}) must be smaller than image_size ({image_size})")
    if n_balls * diameter**2 > MAX_COVERED_FRACTION * image_size**2:
        raise InfeasibleVideo(
            f"{n_balls} balls of diameter {diameter:g} are too crowded in a {image_size}x{image_size} frame "
            f"(their squares would cover {n_balls * diameter**2 / image_size**2:.0%} of it; at most "
            f"{MAX_COVERED_FRACTION:.0%} leaves them room to move)")
    # Centres live in a box of side image_size - diameter; from any point of it some corner lies at least
    # side / sqrt(2) away, so a lone ball always has a valid move of up to that length; a longer step can jam.
    room = (image_size - diameter) / math.sqrt(2)
    if step > room:
        raise InfeasibleVideo(f"a step of {step:g} px does not fit: balls of diameter {diameter:g} in a "
                              f"{image_size}x{image_size} frame are sure of a valid move only up to {room:.4g} px")


def _valid(pos: np.ndarray, others: np.ndarray, radius: float, diameter: float, size: int) -> bool:
    if not (radius <= pos[0] <= size - radius and radius <= pos[1] <= size - radius):
        return False
    return others.size == 0 or bool(np.all(np.hypot(*(others - pos).T) >= diameter))


def _move(b: int, pos: np.ndarray, heading: np.ndarray, step: float, noise: float, radius: float,
          diameter: float, size: int, rng: np.random.Generator) -> bool:
    """Move ball b one step in place, doubling the heading noise after each collision; False if it is jammed."""
    width = noise
    others = np.delete(pos, b, axis=0)
    for _ in range(MAX_TRIES_PER_MOVE):
        new_heading = heading[b] + rng.uniform(-width, width)
        rad = math.radians(new_heading)
        candidate = pos[b] + step * np.array([math.cos(rad), math.sin(rad)])
        if _valid(candidate, others, radius, diameter, size):
            pos[b] = candidate
            heading[b] = new_heading % 360.0
            return True
        width = min(2 * width, 180.0)
    return False


def simulate(n_frames: int, image_size: int, n_balls: int, diameter: float, step: float,
             heading_noise_deg: float, seed: int) -> np.ndarray:
    """Ball centres (n_frames, n_balls, 2) following Appendix D.

    Each ball moves `step` pixels per frame; its new heading is the previous one plus U(-noise, +noise).
    A move that would leave the frame or overlap another ball is resampled with the noise range doubled.
    Balls move one after another. Appendix D does not say what happens when a ball has no valid move at
    all (wedged against a wall by the balls that moved before it; about one seed in six hits this within
    900 frames), so then the whole frame's moves are drawn again with the balls in a random order. Videos
    that never jam are unaffected by this rule.
    """
    check_feasible(image_size, n_balls, diameter, step)
    rng = np.random.default_rng(seed)
    radius = diameter / 2
    pos = np.zeros((n_balls, 2))
    for b in range(n_balls):
        for _ in range(MAX_PLACEMENT_TRIES):
            candidate = rng.uniform(radius, image_size - radius, size=2)
            if _valid(candidate, pos[:b], radius, diameter, image_size):
                pos[b] = candidate
                break
        else:
            raise InfeasibleVideo(f"could not place {n_balls} balls of diameter {diameter} in {image_size}px")
    heading = rng.uniform(0.0, 360.0, size=n_balls)
    centres = np.empty((n_frames, n_balls, 2))
    centres[0] = pos
    geometry = (step, heading_noise_deg, radius, diameter, image_size, rng)
    for t in range(1, n_frames):
        order = range(n_balls)
        for _ in range(MAX_FRAME_REDRAWS):
            new_pos, new_heading = pos.copy(), heading.copy()
            if all(_move(b, new_pos, new_heading, *geometry) for b in order):
                break
            order = rng.permutation(n_balls)  # a wedged ball often gets free when it moves before the others
        else:
            raise InfeasibleVideo(f"balls jammed at frame {t}: no valid moves in {MAX_FRAME_REDRAWS} redraws")
        pos, heading = new_pos, new_heading
        centres[t] = pos
    return centres


BACKGROUNDS = {"black": 0, "white": 255}


def render(centres: np.ndarray, image_size: int, diameter: float, background: str = "black",
           antialias: bool = True) -> np.ndarray:
    """Frames (n, 3, H, W) uint8 on a plain background.

    A pixel's coverage by a ball is clip(r + 0.5 - distance, 0, 1) with anti-aliasing (App. D does not say;
    rpm's default), else 1 where the pixel centre lies inside the ball. Each ball moves a pixel from the
    background towards its colour by its coverage. Coverage is computed for all frames at once on a small
    patch around each ball, then pasted frame by frame, so 900 frames of 256x256 take a fraction of a second.
    """
    n, n_balls, _ = centres.shape
    radius = diameter / 2
    level = BACKGROUNDS[background]
    frames = np.full((n, 3, image_size, image_size), level, dtype=np.uint8)
    half = int(math.ceil(radius)) + 1
    offsets = np.arange(-half, half + 1)
    for b, colour in enumerate(ball_colours(n_balls)):
        cx, cy = centres[:, b, 0], centres[:, b, 1]
        x0 = np.floor(cx).astype(int) - half  # patch origin; may lie partly outside the frame
        y0 = np.floor(cy).astype(int) - half
        dx2 = (x0[:, None] + offsets + half + 0.5 - cx[:, None]) ** 2
        dy2 = (y0[:, None] + offsets + half + 0.5 - cy[:, None]) ** 2
        distance = np.sqrt(dy2[:, :, None] + dx2[:, None, :])  # (n, P, P)
        cover = np.clip(radius + 0.5 - distance, 0.0, 1.0) if antialias else (distance <= radius).astype(float)
        towards = np.asarray(colour, np.float32) - level  # how far the ball's colour is from the background
        paint = np.rint(cover[:, None] * towards[None, :, None, None]).astype(np.int16)
        for t in range(n):
            # Crop the patch to the frame (only zero-coverage pixels fall outside it).
            ys = slice(max(y0[t], 0), min(y0[t] + paint.shape[2], image_size))
            xs = slice(max(x0[t], 0), min(x0[t] + paint.shape[3], image_size))
            patch = paint[t, :, ys.start - y0[t]:ys.stop - y0[t], xs.start - x0[t]:xs.stop - x0[t]]
            # Touching balls can share an edge pixel: add with saturation instead of overwriting.
            region = frames[t, :, ys, xs]
            region[...] = np.clip(region + patch, 0, 255)
    return frames


def video_key(data_cfg: dict, seed: int, n_frames: int) -> dict:
    key = {
        "version": GENERATOR_VERSION, "seed": int(seed), "n_frames": int(n_frames),
        "image_size": int(data_cfg["image_size"]), "n_balls": int(data_cfg["n_balls"]),
        "ball_diameter": float(data_cfg["ball_diameter"]), "step": float(data_cfg["step"]),
        "heading_noise_deg": float(data_cfg["heading_noise_deg"]),
    }
    # Only when not the default, so the caches of videos made before these keys existed stay valid.
    if data_cfg.get("background", "black") != "black":
        key["background"] = data_cfg["background"]
    if not data_cfg.get("antialias", True):
        key["antialias"] = False
    return key


def generate(key: dict) -> Video:
    centres = simulate(key["n_frames"], key["image_size"], key["n_balls"], key["ball_diameter"],
                       key["step"], key["heading_noise_deg"], key["seed"])
    frames = render(centres, key["image_size"], key["ball_diameter"], key.get("background", "black"),
                    key.get("antialias", True))
    return Video(frames, centres.astype(np.float32))


def _valid_arrays(key: dict):
    n, size, balls = key["n_frames"], key["image_size"], key["n_balls"]
    return lambda a: (set(a) == {"frames", "centres"} and a["frames"].shape == (n, 3, size, size)
                      and a["frames"].dtype == np.uint8 and a["centres"].shape == (n, balls, 2))


def load_video(data_cfg: dict, seed: int, n_frames: int) -> Video:
    """The video for this config and seed, from the shared cache (data/cache.py: uint8 on disk, keyed by the
    config; the last few kept by this process, which nobody may modify: a sweep's runs share the validation
    and test videos, and evaluation after training reads the training video again)."""
    key = video_key(data_cfg, seed, n_frames)

    def generated() -> dict:
        video = generate(key)
        return {"frames": video.frames, "centres": video.centres}

    return cache.load("balls", key, data_cfg.get("cache_dir"), generated, _valid_arrays(key),
                      lambda a: Video(a["frames"], a["centres"]))


def forget_recent_videos() -> None:
    """Drop the videos this process keeps, so that the next load_video reads the disk cache again."""
    cache.forget_recent()
