"""The project's training step computes the same loss and gradients as the benchmark's plain eager step."""
import importlib.util
from pathlib import Path

import torch

from rpm_cli.data.balls import load_video
from rpm_cli.train import Model

_spec = importlib.util.spec_from_file_location("bench", Path(__file__).parent.parent / "scripts" / "bench.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_rpm_step_matches_plain_eager_reference(tiny_cfg):
    cfg = tiny_cfg("data.n_balls=3")  # the reference has Fig. 2's 3 maps
    torch.manual_seed(0)
    model = Model(cfg)
    plain = bench.PlainEagerStep(lengthscale=cfg.prior.lengthscale / cfg.data.image_size)
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
    assert torch.allclose(model.critic.log_lengthscale.grad, plain.log_lengthscale.grad, rtol=1e-4, atol=1e-7)
