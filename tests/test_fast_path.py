"""The project's training step computes the same loss and gradients as the plain eager reference step, and the
encoder's background-skipping pass (models/sparse.py) the same as its dense pass."""
import pytest
import torch

from rpm_cli.data.balls import load_video
from rpm_cli.models import sparse
from rpm_cli.models.encoder import CentreOfMassEncoder
from rpm_cli.models.model import Model

from tests.eager_reference import PlainEagerStep


def test_rpm_step_matches_plain_eager_reference(tiny_cfg):
    cfg = tiny_cfg("data.n_balls=3")  # the reference has Fig. 2's 3 maps
    torch.manual_seed(0)
    model = Model(cfg)
    plain = PlainEagerStep(lengthscale=cfg.prior.lengthscale / cfg.data.image_size)
    pairs = [(model.encoder.conv1, plain.net[0]), (model.encoder.bn1, plain.net[1]),
             (model.encoder.conv2, plain.net[3]), (model.encoder.bn2, plain.net[4])]
    for ours, theirs in pairs:
        theirs.load_state_dict(ours.state_dict())
    video = load_video(cfg.data, seed=0, n_frames=cfg.data.n_frames)
    index = torch.cat([torch.arange(0, 20, 2), torch.arange(0, 20, 2) + 1])
    frames = torch.from_numpy(video.frames)[index]

    ours = model.loss(frames, torch.from_numpy(video.centres)[index])
    theirs = plain.loss(frames.float() / 255)
    ours.backward()
    theirs.backward()
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    for ours_mod, theirs_mod in pairs:
        for (name, p), q in zip(ours_mod.named_parameters(), theirs_mod.parameters()):
            assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), name
    assert torch.allclose(model.prior.log_lengthscale.grad, plain.log_lengthscale.grad, rtol=1e-4, atol=1e-7)


def _sparse_and_dense(seed=0, kernels="native"):
    torch.manual_seed(seed)
    fast = CentreOfMassEncoder(n_maps=3, map_bias_init=-2.0, kernels=kernels)
    with torch.no_grad():  # away from the default init, so that every term of the gradient matters
        for p in fast.parameters():
            p.add_(0.3 * torch.randn_like(p))
    dense = CentreOfMassEncoder(n_maps=3, map_bias_init=-2.0, skip_background=False)
    dense.load_state_dict(fast.state_dict())
    return fast.train(), dense.train()


def _assert_same_step(fast, dense, frames):
    z_fast, z_dense = fast(frames), dense(frames)
    assert torch.allclose(z_fast, z_dense, rtol=1e-5, atol=1e-6)
    weights = torch.randn(z_dense.shape, generator=torch.Generator().manual_seed(1))
    (z_fast * weights).sum().backward()
    (z_dense * weights).sum().backward()
    for (name, p), q in zip(fast.named_parameters(), dense.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-3, atol=1e-5), name
    _assert_same_buffers(fast, dense)


def _assert_same_buffers(fast, dense):
    for (name, a), b in zip(fast.named_buffers(), dense.buffers()):  # running stats drive `rpm evaluate`
        assert torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-7), name


def test_background_skipping_pass_equals_the_dense_pass_at_the_image_border():
    frames = torch.zeros(5, 3, 48, 64, dtype=torch.uint8)
    frames[0, 0, :6, :6] = 255      # a corner: the border classes of the closed-form background
    frames[1, 1, 20:30, 58:] = 200   # the right edge
    frames[2, :, 40:, 10:20] = 90    # the bottom edge, all channels
    frames[3, 2, 21:24, 30:33] = 17  # interior, dim
    # frame 4 stays black: nothing but background
    fast, dense = _sparse_and_dense()
    assert sparse.applies(fast, frames)
    _assert_same_step(fast, dense, frames)


def test_background_skipping_pass_equals_the_dense_pass_on_paper_size_frames():
    video = load_video({"n_frames": 12, "image_size": 256, "n_balls": 3, "ball_diameter": 32, "step": 32,
                        "heading_noise_deg": 2.0, "seed": 0, "cache_dir": None}, seed=0, n_frames=12)
    frames = torch.from_numpy(video.frames)
    fast, dense = _sparse_and_dense()
    tiles = int(sparse.active_tiles(frames, fast.tile).sum())
    assert tiles < 0.15 * 12 * (256 // fast.tile) ** 2  # the point of it: most tiles are skipped
    _assert_same_step(fast, dense, frames)


def test_frames_the_tiles_do_not_divide_take_the_dense_pass():
    frames = torch.zeros(2, 3, 21, 19, dtype=torch.uint8)  # odd sides: 2-pixel tiles do not divide them
    frames[:, 0, 5:9, 5:9] = 255
    fast, dense = _sparse_and_dense()
    assert not sparse.applies(fast, frames) and not sparse.applies(fast, frames[..., :16, :16].float())
    _assert_same_step(fast, dense, frames)


def test_cumulative_batchnorm_calibration_matches_the_dense_pass():
    """`rpm evaluate` calibrates the random-init control with momentum None (a cumulative average)."""
    from rpm_cli.evaluate import calibrate_batchnorm

    frames = torch.zeros(9, 3, 32, 32, dtype=torch.uint8)
    for i in range(9):
        frames[i, i % 3, 2 * i:2 * i + 6, 3 * i:3 * i + 5] = 40 + 20 * i
    fast, dense = _sparse_and_dense()
    calibrate_batchnorm(fast, frames.numpy(), batch_size=4)
    calibrate_batchnorm(dense, frames.numpy(), batch_size=4)
    _assert_same_buffers(fast, dense)


def test_eval_mode_background_skipping_equals_the_dense_pass():
    """`rpm evaluate` encodes in eval mode (running statistics) through the same fast pass."""
    video = load_video({"n_frames": 6, "image_size": 256, "n_balls": 3, "ball_diameter": 32, "step": 32,
                        "heading_noise_deg": 2.0, "seed": 4, "cache_dir": None}, seed=4, n_frames=6)
    frames = torch.from_numpy(video.frames)
    fast, dense = _sparse_and_dense()
    fast(frames), dense(frames)  # running statistics away from their initial values
    fast.eval(), dense.eval()
    with torch.no_grad():
        assert torch.allclose(fast(frames), dense(frames), rtol=1e-5, atol=1e-6)
    _assert_same_buffers(fast, dense)  # eval mode leaves them alone


def test_eval_mode_maps_near_the_balls_equal_the_dense_maps_at_the_border_and_at_paper_size():
    """The maps map health reads (encoder.maps_in_eval) come from the fast pass: the dense maps everywhere."""
    border = torch.zeros(5, 3, 48, 64, dtype=torch.uint8)
    border[0, 0, :6, :6], border[1, 1, 20:30, 58:], border[2, :, 40:, 10:20] = 255, 200, 90
    border[3, 2, 21:24, 30:33] = 17
    video = load_video({"n_frames": 6, "image_size": 256, "n_balls": 3, "ball_diameter": 32, "step": 32,
                        "heading_noise_deg": 2.0, "seed": 4, "cache_dir": None}, seed=4, n_frames=6)
    for frames in (border, torch.from_numpy(video.frames)):
        fast, dense = _sparse_and_dense()
        fast(frames)  # running statistics away from their initial values
        dense.load_state_dict(fast.state_dict())
        with pytest.raises(ValueError, match="eval mode"):
            sparse.feature_maps(fast, frames)
        expected = dense.eval().feature_maps(frames).detach()
        maps = fast.maps_in_eval(frames)
        assert fast.training  # put back as it was
        assert maps.shape == expected.shape and torch.allclose(maps, expected, rtol=1e-5, atol=1e-7)


def test_small_crops_that_overlap_and_leave_tiles_to_later_rounds_give_the_same_step():
    """Crops smaller than a ball: several per ball, placed round after round, overlapping; each active tile is
    still counted once."""
    video = load_video({"n_frames": 8, "image_size": 64, "n_balls": 3, "ball_diameter": 12, "step": 12,
                        "heading_noise_deg": 2.0, "seed": 3, "cache_dir": None}, seed=3, n_frames=8)
    frames = torch.from_numpy(video.frames)
    fast, dense = _sparse_and_dense()
    fast.crop_tiles = 16 // fast.tile  # 16-px crops, with the 2-px halo read as wide as rpm's kernels need
    active = sparse.active_tiles(frames, fast.tile)
    frame, top, left, owned = sparse.place_crops(active, side=fast.crop_tiles)
    assert len(frame) > 3 * len(frames)  # more than one crop per ball
    assert int(owned.sum()) == int(active.sum())  # every active tile owned exactly once
    _assert_same_step(fast, dense, frames)


def test_a_videos_crop_index_gives_each_batch_the_crops_of_its_frames():
    """Training gathers a batch's crops from the whole video's (found once): the same step as from the frames."""
    video = load_video({"n_frames": 30, "image_size": 64, "n_balls": 3, "ball_diameter": 12, "step": 12,
                        "heading_noise_deg": 2.0, "seed": 3, "cache_dir": None}, seed=3, n_frames=30)
    frames = torch.from_numpy(video.frames)
    index = torch.tensor([7, 2, 29, 2, 15, 0])
    crops = sparse.CropIndex(frames, side=3, tile=8, chunk=8).batch(index)
    direct = sparse.crops_of(frames[index], side=3, tile=8)
    for name in ("frame", *sparse.PER_CROP):
        assert torch.equal(getattr(crops, name), getattr(direct, name)), name
    fast, dense = _sparse_and_dense()
    fast.crop_tiles = 3
    for a, b in zip(crops.chunk(2), frames[index].chunk(2)):
        assert torch.allclose(fast(a), dense(b), rtol=1e-5, atol=1e-6)
