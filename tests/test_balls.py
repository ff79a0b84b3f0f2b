import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rpm_cli.data import balls
from rpm_cli.data.balls import CORAL, InfeasibleVideo, load_video, render, simulate
from tests.helpers import examples

SIZE, N_BALLS, DIAM, STEP, NOISE = 64, 2, 12.0, 12.0, 2.0


@pytest.fixture(scope="module")
def centres():
    return simulate(400, SIZE, N_BALLS, DIAM, STEP, NOISE, seed=3)


def headings(c):
    d = np.diff(c, axis=0)
    return np.degrees(np.arctan2(d[..., 1], d[..., 0]))


def test_every_move_is_one_step_long(centres):
    assert np.allclose(np.linalg.norm(np.diff(centres, axis=0), axis=-1), STEP)


def test_balls_stay_inside_and_never_overlap(centres):
    r = DIAM / 2
    assert centres.min() >= r - 1e-9 and centres.max() <= SIZE - r + 1e-9
    dist = np.linalg.norm(centres[:, 0] - centres[:, 1], axis=-1)
    assert dist.min() >= DIAM - 1e-9


def _fan_is_free(pos, heading, others, size):
    """True when every heading within ±NOISE of `heading` gives a valid move."""
    r = DIAM / 2
    for delta in np.linspace(-NOISE, NOISE, 41):
        rad = math.radians(heading + delta)
        p = pos + STEP * np.array([math.cos(rad), math.sin(rad)])
        if not (r <= p[0] <= size - r and r <= p[1] <= size - r):
            return False
        if others.size and np.min(np.linalg.norm(others - p, axis=-1)) < DIAM:
            return False
    return True


def test_heading_noise_bounded_unless_a_collision_forced_a_wider_draw(centres):
    h = headings(centres)
    turn = (np.diff(h, axis=0) + 180) % 360 - 180  # heading change at each frame after the first move
    free_moves = 0
    for t in range(1, len(h)):
        for b in range(N_BALLS):
            # Balls move in order: earlier balls are already at their new position.
            others = np.array([centres[t + 1, o] if o < b else centres[t, o] for o in range(N_BALLS) if o != b])
            if _fan_is_free(centres[t, b], h[t - 1, b], others, SIZE):
                free_moves += 1
                assert abs(turn[t - 1, b]) <= NOISE + 1e-6
    assert free_moves > 0.5 * (len(h) - 1) * N_BALLS
    assert np.abs(turn).max() > NOISE  # walls did force wider turns somewhere


def test_same_seed_same_video_other_seed_differs():
    a = simulate(50, SIZE, N_BALLS, DIAM, STEP, NOISE, seed=1)
    assert np.array_equal(a, simulate(50, SIZE, N_BALLS, DIAM, STEP, NOISE, seed=1))
    assert not np.allclose(a, simulate(50, SIZE, N_BALLS, DIAM, STEP, NOISE, seed=2))


def test_render_colours_and_antialiased_edges():
    c = np.array([[[20.0, 20.0], [45.0, 40.0]]])
    frame = render(c, SIZE, DIAM)[0]
    assert frame.shape == (3, SIZE, SIZE) and frame.dtype == np.uint8
    assert tuple(frame[:, 20, 20]) == CORAL  # ball 0 is coral (pixel (20, 20) lies well inside it)
    assert tuple(frame[:, 40, 45]) != CORAL and frame[:, 40, 45].max() > 0
    assert frame[:, 0, 0].max() == 0  # black background
    red = frame[0].astype(int)
    edge = red[(red > 0) & (red < CORAL[0])]
    assert edge.size > 10  # partially covered pixels on the rim
    # Coverage area matches the disc area (π r²) within a pixel's rim.
    assert abs(red[:, :32].sum() / CORAL[0] - math.pi * (DIAM / 2) ** 2) < 3


@pytest.mark.parametrize("seed", [13, 15])
def test_full_size_seeds_that_wedge_a_ball_still_give_a_valid_video(seed):
    # With strictly sequential moves these seeds leave a ball with no valid move (frames 867 and 536).
    c = simulate(900, 256, 3, 32.0, 32.0, 2.0, seed=seed)
    assert np.allclose(np.linalg.norm(np.diff(c, axis=0), axis=-1), 32.0)
    assert c.min() >= 16 - 1e-9 and c.max() <= 240 + 1e-9
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        assert np.linalg.norm(c[:, i] - c[:, j], axis=-1).min() >= 32 - 1e-9


@pytest.mark.parametrize("kwargs", [
    dict(image_size=64, n_balls=40, diameter=12.0),   # do not fit
    dict(image_size=10, n_balls=1, diameter=12.0),    # ball larger than the frame
    dict(image_size=64, n_balls=1, diameter=0.0),     # non-positive size
])
def test_infeasible_configs_fail_at_once(kwargs):
    with pytest.raises(InfeasibleVideo):
        simulate(n_frames=10, step=5.0, heading_noise_deg=2.0, seed=0, **kwargs)


def test_a_video_that_jams_anyway_is_a_one_line_user_error_naming_the_keys(monkeypatch, capsys):
    from rpm_cli.errors import UserError, reported

    monkeypatch.setattr(balls, "check_feasible", lambda *args: None)  # let the crowd reach the generator
    with pytest.raises(SystemExit) as exit_info, reported():
        simulate(n_frames=20, image_size=16, n_balls=8, diameter=4.0, step=4.0, heading_noise_deg=2.0, seed=0)
    assert exit_info.value.code == UserError.exit_code == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and "balls jammed at frame" in message
    assert message.startswith("error: data.n_balls, data.image_size, data.ball_diameter, data.step:")


@pytest.mark.fuzz
@settings(max_examples=examples(60))
@given(size=st.integers(16, 64), diameter=st.floats(1.0, 40.0), n_balls=st.integers(1, 8),
       step_per_diameter=st.floats(0.25, 3.0), seed=st.integers(10, 10**6))
def test_every_geometry_the_rule_accepts_generates(size, diameter, n_balls, step_per_diameter, seed):
    """check_feasible (what validation refuses before work) and the generator agree: what passes the rule
    does not jam. The exploratory profile (`make fuzz`) draws many more geometries than the default suite."""
    step = diameter * step_per_diameter
    try:
        balls.check_feasible(size, n_balls, diameter, step)
    except InfeasibleVideo:
        return
    centres = simulate(120, size, n_balls, diameter, step, 2.0, seed)
    assert np.allclose(np.linalg.norm(np.diff(centres, axis=0), axis=-1), step)


DATA = {"image_size": SIZE, "n_balls": N_BALLS, "ball_diameter": DIAM, "step": STEP, "heading_noise_deg": NOISE}


def test_cache_is_reused_and_bad_cache_regenerated(tmp_path, monkeypatch):
    cfg = {**DATA, "cache_dir": str(tmp_path)}
    first = load_video(cfg, seed=0, n_frames=30)
    files = list(tmp_path.glob("balls-*.npz"))
    assert len(files) == 1

    def no_render(key):
        raise AssertionError("re-rendered although cached")

    monkeypatch.setattr(balls, "generate", no_render)
    assert load_video(cfg, seed=0, n_frames=30) is first  # kept by this process
    balls.forget_recent_videos()
    again = load_video(cfg, seed=0, n_frames=30)  # from the disk cache
    assert np.array_equal(first.frames, again.frames)
    monkeypatch.undo()

    good = files[0].read_bytes()
    data = good.index(b"\n", good.index(b"\x93NUMPY")) + 1  # the frames' pixels start after their .npy header
    lit = good.index(bytes([255]) * 8, data)  # a byte of a ball's pixels
    for bad in (good[:1000],  # truncated by a crash or a full disk
                good[:lit] + bytes([good[lit] ^ 1]) + good[lit + 1:]):  # one bit flipped: the same length
        files[0].unlink()  # as a writer would replace it: the mapped file of `again` stays as it was
        files[0].write_bytes(bad)
        balls.forget_recent_videos()
        regenerated = load_video(cfg, seed=0, n_frames=30)
        assert np.array_equal(first.frames, regenerated.frames)  # not the flipped bit
    assert np.array_equal(first.frames, again.frames)  # a replaced file leaves the mapped arrays as they were
    assert not list(tmp_path.glob("*.tmp*"))
