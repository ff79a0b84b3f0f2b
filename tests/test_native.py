"""rpm's CPU kernels (models/native.c): each equals the torch operations it replaces, to float rounding, gives
the same floats whatever the thread count, and rpm falls back to torch where they cannot be built."""
import pytest
import torch
import torch.nn.functional as F

from rpm_cli.models import fused, native, sparse

from tests.test_fast_path import _assert_same_step, _sparse_and_dense

pytestmark = pytest.mark.skipif(native.library() is None, reason="rpm's kernels did not build here (no C compiler)")


@pytest.fixture
def torch_only(monkeypatch):
    """Within the test, rpm's kernels are unavailable, as without a compiler."""
    monkeypatch.setattr(native, "library", lambda: None)


def _random(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("crops,channels,out,side", [(37, 3, 6, 52), (16, 6, 3, 50), (3, 6, 3, 13), (1, 2, 5, 10), (2, 3, 6, 44)])
def test_convolution_and_its_gradients_equal_torchs(crops, channels, out, side):
    """Sides that are not a multiple of 8 take the tail loops; crop counts that are not a multiple of the chunk
    take a short last chunk."""
    x, w = _random(crops, channels, side, side).requires_grad_(), _random(out, channels, 3, 3, seed=1).requires_grad_()
    ours = native.conv3x3(x, w)
    theirs = F.conv2d(x, w)
    assert ours.grad_fn is not None and "Conv3x3" in type(ours.grad_fn).__name__  # not torch's convolution
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    grad = _random(*theirs.shape, seed=2)
    ours_x, ours_w = torch.autograd.grad(ours, (x, w), grad)
    theirs_x, theirs_w = torch.autograd.grad(theirs, (x, w), grad)
    assert torch.allclose(ours_x, theirs_x, rtol=1e-5, atol=1e-5)
    assert torch.allclose(ours_w, theirs_w, rtol=1e-5, atol=1e-4 * theirs_w.abs().max().item())


def test_crops_narrower_than_a_vector_take_torchs_convolution():
    x, w = _random(3, 6, 9, 9).requires_grad_(), _random(3, 6, 3, 3, seed=1)
    assert torch.equal(native.conv3x3(x, w), F.conv2d(x, w))


def test_no_crops_give_empty_maps_and_zero_weight_gradients():
    x, w = torch.zeros(0, 3, 52, 52), _random(6, 3, 3, 3).requires_grad_()
    y = native.conv3x3(x, w)
    assert y.shape == (0, 6, 50, 50)
    (y.sum() + 0 * w.sum()).backward()
    assert torch.equal(w.grad, torch.zeros_like(w))


def test_an_infinite_gradient_stays_infinite_in_the_weights_gradient():
    """The last vector of a row overlaps the one before where the width is not a multiple of 8; its lanes
    counted already are masked by bits, not by multiplying by 0 (inf * 0 would be NaN)."""
    x, w = torch.rand(2, 3, 15, 15).requires_grad_(), _random(6, 3, 3, 3, seed=1).requires_grad_()
    grad = torch.zeros(2, 6, 13, 13)
    grad[1, 2, 4, 6] = float("inf")  # column 6 of 13: counted in the first vector (0-7), masked in the last (5-12)
    (ours,) = torch.autograd.grad(native.conv3x3(x, w), w, grad)
    (theirs,) = torch.autograd.grad(F.conv2d(x, w), w, grad)
    assert torch.equal(ours.isinf(), theirs.isinf()) and not ours.isnan().any()


def test_a_batch_without_a_lit_pixel_trains_and_encodes_as_the_dense_pass():
    fast, dense = _sparse_and_dense()
    frames = torch.zeros(3, 3, 64, 64, dtype=torch.uint8)  # no crops at all
    _assert_same_step(fast, dense, frames)
    fast.eval(), dense.eval()
    assert torch.allclose(fast(frames), dense(frames), rtol=1e-5, atol=1e-6)


def _stages(y1, y2, own1, own2, outside, grads):
    """Every fused stage forward and backward on fixed inputs: their outputs and input gradients."""
    leaves = [t.clone().requires_grad_() for t in (y1, y2)]
    weight, bias = torch.tensor([1.5, 0.5, 2.0]).requires_grad_(), torch.tensor([0.1, -0.2, 0.3]).requires_grad_()
    scale, shift = torch.tensor([0.7, -1.2, 0.9]).requires_grad_(), torch.tensor([-2.0, 0.5, 0.0]).requires_grad_()
    values = _random(3, 3, 3, seed=7).sigmoid().requires_grad_()  # the background by border class
    n, side = y2.shape[0], y2.shape[-1]
    row_class, col_class = (torch.randint(0, 3, (n, side), generator=torch.Generator().manual_seed(s)).to(torch.uint8)
                            for s in (8, 9))
    a, shift1, _, _ = fused.BatchNormReLU.apply(leaves[0], weight, bias, own1, outside, 10 * y1[0, 0].numel(), 1e-5,
                                                True)
    total, squares = fused.MaskedMoments.apply(leaves[1], own2, shift.detach(), True)
    if native.library():  # as sparse.feature_marginals chooses
        own2 = own2.contiguous()
        cols, rows = fused.SigmoidClassDifferenceSums.apply(leaves[1], scale, shift, values, row_class, col_class,
                                                            *sparse.class_weights(own2, row_class, col_class), own2)
    else:
        rc, cc = row_class.long(), col_class.long()
        background = values[:, rc[:, :, None], cc[:, None, :]].transpose(0, 1)  # (n, 3, side, side)
        cols, rows = fused.SigmoidDifferenceSums.apply(leaves[1], scale, shift, background, own2)
    outputs = [a, shift1, total, squares, cols, rows]
    loss = sum((o * g).sum() for o, g in zip(outputs, grads))
    inputs = [*leaves, weight, bias, scale, shift, values]
    return [o.detach() for o in outputs] + list(torch.autograd.grad(loss, inputs))


def _stage_inputs():
    y1, y2 = _random(21, 3, 12, 12), _random(21, 3, 10, 10, seed=1)
    own1 = (torch.rand(21, 1, 12, 12, generator=torch.Generator().manual_seed(2)) > 0.3).float()
    own2 = own1[..., 1:-1, 1:-1]  # a strided view, as sparse.py passes it
    outside = torch.zeros(21, 1, 12, 12)  # float 1 or 0, as Crops.outside1
    outside[4, :, :3] = 1.0
    probe = _stages(y1, y2, own1, own2, outside, [0] * 6)[:6]
    grads = [_random(*o.shape, seed=10 + k) for k, o in enumerate(probe)]
    return y1, y2, own1, own2, outside, grads


def test_each_fused_stage_equals_its_torch_operations(monkeypatch):
    inputs = _stage_inputs()
    ours = _stages(*inputs)
    with monkeypatch.context() as m:
        m.setattr(native, "library", lambda: None)
        theirs = _stages(*inputs)
    names = ["a", "shift1", "total", "squares", "cols", "rows", "grad y1", "grad y2", "grad weight", "grad bias",
             "grad scale", "grad shift", "grad background values"]
    for name, o, t in zip(names, ours, theirs):
        assert torch.allclose(o, t, rtol=1e-4, atol=1e-5), name


def test_a_nan_stays_nan_through_batchnorm_and_relu_as_in_torch(monkeypatch):
    y = _random(4, 3, 12, 12)
    y[1, 0, 5, 5] = float("nan")
    own, outside = torch.ones(4, 1, 12, 12), torch.zeros(4, 1, 12, 12)
    args = (torch.ones(3), torch.zeros(3), own, outside, 4 * 144, 1e-5, True)
    ours = fused.BatchNormReLU.apply(y, *args)[0]
    monkeypatch.setattr(native, "library", lambda: None)
    theirs = fused.BatchNormReLU.apply(y, *args)[0]
    assert torch.equal(ours.isnan(), theirs.isnan()) and ours.isnan().any()


def test_the_kernels_give_the_same_floats_on_one_thread_and_on_two():
    inputs = _stage_inputs()
    x, w = _random(40, 6, 50, 50).requires_grad_(), _random(3, 6, 3, 3, seed=1).requires_grad_()

    def everything():
        y = native.conv3x3(x, w)
        return [y.detach(), *torch.autograd.grad(y, (x, w), torch.ones_like(y)), *_stages(*inputs)]

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = everything()
        torch.set_num_threads(2)
        two = everything()
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(one, two))


def test_the_encoder_step_with_rpms_kernels_equals_the_dense_pass():
    fast, dense = _sparse_and_dense()
    frames = torch.zeros(6, 3, 64, 64, dtype=torch.uint8)
    for k in range(6):
        frames[k, k % 3, 5 + 7 * k: 17 + 7 * k, 3 + 8 * k: 20 + 8 * k] = 60 + 30 * k
    _assert_same_step(fast, dense, frames)


def _paper_size_frames(n=6):
    from rpm_cli.data.balls import load_video

    video = load_video({"n_frames": n, "image_size": 256, "n_balls": 3, "ball_diameter": 32, "step": 32,
                        "heading_noise_deg": 2.0, "seed": 0, "cache_dir": None}, seed=0, n_frames=n)
    return torch.from_numpy(video.frames)


def test_encoder_kernels_torch_takes_torchs_operations_on_8_pixel_tiles(monkeypatch):
    """The arithmetic of the runs trained before rpm had its kernels (the registered study's)."""
    def refuse(*args):
        raise AssertionError("encoder.kernels=torch called rpm's kernels")

    monkeypatch.setattr(native, "_call", refuse)
    fast, dense = _sparse_and_dense(kernels="torch")
    assert fast.tile == 8
    _assert_same_step(fast, dense, _paper_size_frames())


def test_both_arithmetics_give_the_same_step_to_float_rounding():
    frames = _paper_size_frames()
    ours, _ = _sparse_and_dense(kernels="native")
    theirs, _ = _sparse_and_dense(kernels="torch")
    assert ours.tile == 2
    _assert_same_step(ours, theirs, frames)


def test_without_the_kernels_the_sparse_pass_is_torchs_own(torch_only):
    x, w = _random(5, 3, 12, 12), _random(6, 3, 3, 3)
    assert torch.equal(native.conv3x3(x, w), F.conv2d(x, w))
    fast, dense = _sparse_and_dense()
    frames = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    frames[:, 1, 8:20, 9:21] = 200
    _assert_same_step(fast, dense, frames)


def test_a_failed_build_warns_once_and_falls_back(monkeypatch, tmp_path, caplog):
    bad = tmp_path / "cc"
    bad.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo broken 1.0; exit 0; fi\necho 'error: no' >&2; exit 1\n")
    bad.chmod(0o755)
    monkeypatch.setenv("CC", str(bad))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    native.library.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="rpm_cli.models.native"):
            assert native.library() is None
            assert native.library() is None
        assert [r.getMessage() for r in caplog.records if "did not build" in r.getMessage()] != []
        assert len(caplog.records) == 1
        x, w = _random(2, 3, 8, 8), _random(6, 3, 3, 3)
        assert torch.equal(native.conv3x3(x, w), F.conv2d(x, w))
    finally:
        native.library.cache_clear()


def test_the_library_is_compiled_once_per_machine_and_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    native.library.cache_clear()
    try:
        assert native.library() is not None
        built = list((tmp_path / "rpm").glob("native-*.so"))
        assert len(built) == 1
        stamp = built[0].stat().st_mtime_ns
        native.library.cache_clear()
        assert native.library() is not None
        assert [p.stat().st_mtime_ns for p in (tmp_path / "rpm").glob("native-*.so")] == [stamp]
    finally:
        native.library.cache_clear()


def test_rpm_native_0_turns_the_kernels_off(monkeypatch):
    monkeypatch.setenv("RPM_NATIVE", "0")
    native.library.cache_clear()
    try:
        assert native.library() is None
    finally:
        native.library.cache_clear()
