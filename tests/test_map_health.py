"""Map health (encoder.map_concentration) and re-seeding a map that holds no ball (trainer.reseed_below)."""
import json

import numpy as np
import pytest
import torch

from rpm_cli.config import validate_train
from rpm_cli.errors import UserError
from rpm_cli.layout import CHECKPOINT, METRICS
from rpm_cli.map_health import reseed_epochs, reseed_unhealthy
from rpm_cli.models.encoder import CentreOfMassEncoder
from rpm_cli.models.model import Model
from rpm_cli.runs import load_checkpoint
from rpm_cli.train import train
from tests.helpers import train_killed_at_epoch


def _encoder_with_maps(maps: torch.Tensor, monkeypatch) -> CentreOfMassEncoder:
    encoder = CentreOfMassEncoder(n_maps=maps.shape[1])
    encoder.ball_diameter_px = 8.0
    monkeypatch.setattr(encoder, "maps_in_eval", lambda frames: maps)
    return encoder


def test_concentration_by_hand(monkeypatch):
    """One blob, two far blobs, a uniform background: the share of mass within a diameter of the centre."""
    maps = torch.zeros(1, 3, 64, 64)
    maps[0, 0, 10:14, 10:14] = 1.0                           # one ball: all of it near its centre
    maps[0, 1, 10:14, 10:14] = maps[0, 1, 50:54, 50:54] = 1.0  # two balls 56 px apart: centre between them
    maps[0, 2] = 1.0                                         # the background
    concentration = _encoder_with_maps(maps, monkeypatch).map_concentration(torch.zeros(1, 3, 64, 64))
    centres = np.arange(64) + 0.5
    disc = ((centres[:, None] - 32) ** 2 + (centres[None, :] - 32) ** 2 < 64).sum() / 64**2  # r = 8 px at (32, 32)
    assert concentration.tolist() == pytest.approx([1.0, 0.0, disc], abs=1e-6)


def test_leak_by_hand(monkeypatch):
    """Map 0 holds its ball and a tenth as much on map 1's ball: 1.6 of its 17.6 units lie near map 1's centre."""
    maps = torch.zeros(1, 3, 64, 64)
    maps[0, 0, 10:14, 10:14], maps[0, 0, 50:54, 50:54] = 1.0, 0.1
    maps[0, 1, 50:54, 50:54] = 1.0
    maps[0, 2, 10:14, 50:54] = 1.0
    leak = _encoder_with_maps(maps, monkeypatch).map_leak(torch.zeros(1, 3, 64, 64))
    assert leak.tolist() == pytest.approx([1.6 / 17.6, 0.0, 0.0], abs=1e-6)


def test_concentration_leaves_training_state_alone(tiny_cfg):
    model = Model(tiny_cfg())
    model.train()
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    frames = torch.randint(0, 256, (5, 3, 64, 64), dtype=torch.uint8)
    concentration = model.encoder.map_concentration(frames)
    assert concentration.shape == (2,) and bool(((concentration > 0) & (concentration <= 1)).all())
    assert model.encoder.training
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())


def test_reseed_draws_one_map_and_the_dead_features_afresh_and_clears_their_moments(tiny_cfg):
    model = Model(tiny_cfg("encoder.map_bias_init=-6"))
    encoder = model.encoder
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    frames = torch.randint(0, 256, (20, 3, 64, 64), dtype=torch.uint8)
    model.loss(frames, torch.zeros(20, 2, 2)).backward()
    optimizer.step()  # moments and weights away from initialisation
    with torch.no_grad():
        encoder.bn2.weight.fill_(3.0)
        encoder.bn2.running_mean.fill_(0.7)
        encoder.bn1.weight[2], encoder.bn1.bias[2] = 0.0, -1.0  # hidden channel 2 never fires: dead
        encoder.bn1.eval()  # its running statistics as training would leave them
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    assert reseed_unhealthy(model, optimizer, [0.9, 0.1], 0.5, frames, seed=3, epoch=2) == [1]
    after = encoder.state_dict()
    assert torch.equal(after["conv2.weight"][0, :2], before["conv2.weight"][0, :2])  # the healthy map keeps its
    assert torch.equal(after["conv2.weight"][0, 3:], before["conv2.weight"][0, 3:])  # filter on live features
    assert after["conv2.weight"][0, 2].abs().sum() == 0  # and gives the fresh feature no weight
    assert not torch.equal(after["conv2.weight"][1], before["conv2.weight"][1])
    assert float(after["conv2.weight"][1].abs().max()) <= 1 / 54**0.5  # PyTorch's default bound, fan-in 6 * 3 * 3
    assert after["bn2.weight"].tolist() == [3.0, 1.0] and after["bn2.bias"][1] == -6.0
    assert after["bn2.running_mean"].tolist() == pytest.approx([0.7, 0.0])
    changed = [c for c in range(6) if not torch.equal(after["conv1.weight"][c], before["conv1.weight"][c])]
    assert changed == [2] and after["bn1.weight"][2] == 1.0 and after["bn1.bias"][2] == 0.0
    state = optimizer.state[encoder.conv2.weight]
    assert float(state["exp_avg"][1].abs().sum()) == 0 and float(state["exp_avg"][0, 2].abs().sum()) == 0
    assert float(state["exp_avg"][0, 0].abs().sum()) > 0 and float(state["exp_avg_sq"][1].abs().sum()) == 0
    assert float(optimizer.state[encoder.conv1.weight]["exp_avg"][2].abs().sum()) == 0
    assert float(optimizer.state[encoder.conv1.weight]["exp_avg"][0].abs().sum()) > 0
    again = Model(tiny_cfg("encoder.map_bias_init=-6"))
    again.encoder.load_state_dict(before)
    again.encoder.bn1.eval()
    reseed_unhealthy(again, torch.optim.Adam(again.parameters()), [0.9, 0.1], 0.5, frames, seed=3, epoch=2)
    assert torch.equal(again.encoder.conv2.weight, encoder.conv2.weight)  # the run's seed and epoch decide
    assert torch.equal(again.encoder.conv1.weight, encoder.conv1.weight)


def test_healthy_maps_change_nothing(tiny_cfg):
    model = Model(tiny_cfg())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frames = torch.randint(0, 256, (5, 3, 64, 64), dtype=torch.uint8)
    assert reseed_unhealthy(model, torch.optim.Adam(model.parameters()), [0.6, 0.7], 0.5, frames, 3, 2) == []
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_reseed_epochs_leave_two_epochs_to_learn_and_stop_after_three_checks():
    assert list(reseed_epochs(2, 6)) == [2, 3, 4]
    assert list(reseed_epochs(2, 10)) == [2, 3, 4]  # a longer run checks no later: its extension is the same run
    assert list(reseed_epochs(0, 4)) == [1, 2]
    assert list(reseed_epochs(1, 2)) == []


RESEED = ("trainer.optimizer=adam", "trainer.lr=0.02", "trainer.epochs=4", "trainer.reseed_below=1.0", "seed=7")


def _lines(run_dir):
    return [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines()]


def test_training_logs_map_health_and_reseeds_below_the_threshold(tiny_cfg, tmp_path):
    train(tiny_cfg(*RESEED), tmp_path / "run")
    lines = _lines(tmp_path / "run")
    # measured where a check reads it, after epochs 1 and 2 (never where too few epochs remain to learn)
    assert [len(line.get("map_concentration", [])) for line in lines] == [2, 2, 0, 0]
    # every map counts as unhealthy at threshold 1: re-seeded before epochs 2 and 3
    assert [line.get("reseeded_maps") for line in lines] == [None, [0, 1], [0, 1], None]
    train(tiny_cfg(*RESEED[:-2], "seed=7"), tmp_path / "off")  # off: no health pass, no re-seed
    assert not any({"reseeded_maps", "map_concentration"} & set(line) for line in _lines(tmp_path / "off"))


def test_a_run_killed_after_a_reseed_resumes_exactly(tiny_cfg, tmp_path, monkeypatch):
    train(tiny_cfg(*RESEED), tmp_path / "clean")
    run = tmp_path / "killed"
    train_killed_at_epoch(tiny_cfg(*RESEED), run, 3, monkeypatch)  # after the re-seed before epoch 2
    train(tiny_cfg(*RESEED, f"resume={run}"), run)
    clean, resumed = load_checkpoint(tmp_path / "clean" / CHECKPOINT), load_checkpoint(run / CHECKPOINT)
    assert all(torch.equal(clean["model"][k], resumed["model"][k]) for k in clean["model"])
    strip = [{k: v for k, v in line.items() if k not in ("seconds", "frames_per_s")} for line in _lines(run)]
    assert strip == [{k: v for k, v in line.items() if k not in ("seconds", "frames_per_s")}
                     for line in _lines(tmp_path / "clean")]


def test_a_run_extended_on_resume_is_the_longer_run_despite_its_reseeds(tiny_cfg, tmp_path):
    """The recipe study extends finished runs (trainer.epochs=N on resume) instead of training them again:
    with the checks' window complete (before epochs 1-3 here, each re-seeding every map), the same numbers."""
    cfg = (*RESEED[:2], "trainer.reseed_below=1.0", "seed=7")
    train(tiny_cfg(*cfg, "trainer.epochs=6"), tmp_path / "long")
    train(tiny_cfg(*cfg, "trainer.epochs=5"), tmp_path / "extended")
    train(tiny_cfg(*cfg, "trainer.epochs=6", f"resume={tmp_path / 'extended'}"), tmp_path / "extended")
    long, extended = (load_checkpoint(tmp_path / name / CHECKPOINT) for name in ("long", "extended"))
    assert all(torch.equal(long["model"][k], extended["model"][k]) for k in long["model"])
    assert [line.get("reseeded_maps") for line in _lines(tmp_path / "extended")] == [None, [0, 1], [0, 1], [0, 1],
                                                                                      None, None]


def test_a_run_whose_maps_stay_healthy_is_the_run_without_checks(tiny_cfg, tmp_path):
    """The recipe study reads the baseline from a candidate's run that never re-seeded: bit for bit the same."""
    train(tiny_cfg(*RESEED[:-2], "trainer.reseed_below=1e-9", "seed=7"), tmp_path / "checked")
    train(tiny_cfg(*RESEED[:-2], "seed=7"), tmp_path / "off")
    checked, off = (load_checkpoint(tmp_path / name / CHECKPOINT) for name in ("checked", "off"))
    assert all(torch.equal(checked["model"][k], off["model"][k]) for k in off["model"])
    lines = _lines(tmp_path / "checked")
    assert "map_concentration" in lines[0] and not any("reseeded_maps" in line for line in lines)
    assert [line["loss"] for line in lines] == [line["loss"] for line in _lines(tmp_path / "off")]


KEEP = ("trainer.optimizer=adam", "trainer.lr=0.02", "seed=7")


def _models_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_ends_on_the_epoch_whose_maps_leak_least(tiny_cfg, tmp_path, monkeypatch):
    """Scripted leaks 0.3, 0.1, 0.2 after epochs 2-4: the run ends on epoch 3's model, the 3-epoch run's, and
    keeps epoch 4's to go on from."""
    leaks = iter([0.3, 0.1, 0.2])
    monkeypatch.setattr(CentreOfMassEncoder, "map_leak", lambda self, frames: torch.tensor([next(leaks), 0.0]))
    train(tiny_cfg(*KEEP, "trainer.epochs=4", "trainer.keep_from=2"), tmp_path / "kept")
    monkeypatch.undo()
    train(tiny_cfg(*KEEP, "trainer.epochs=3"), tmp_path / "three")
    train(tiny_cfg(*KEEP, "trainer.epochs=4"), tmp_path / "four")
    kept, three, four = (load_checkpoint(tmp_path / name / CHECKPOINT) for name in ("kept", "three", "four"))
    assert _models_equal(kept["model"], three["model"]) and _models_equal(kept["last_model"], four["model"])
    lines = _lines(tmp_path / "kept")
    assert [line.get("map_leak") for line in lines] == [None, 0.3, 0.1, 0.2]
    assert lines[-1]["kept_epoch"] == 3 and kept["metrics"]["kept_epoch"] == 3


def test_keep_from_added_on_resume_is_the_run_trained_with_it(tiny_cfg, tmp_path):
    """The recipe study extends a finished run with trainer.epochs and trainer.keep_from: the same run."""
    train(tiny_cfg(*KEEP, "trainer.epochs=5", "trainer.keep_from=3"), tmp_path / "full")
    run = tmp_path / "extended"
    train(tiny_cfg(*KEEP, "trainer.epochs=3"), run)
    train(tiny_cfg(*KEEP, "trainer.epochs=5", "trainer.keep_from=3", f"resume={run}"), run)
    full, extended = load_checkpoint(tmp_path / "full" / CHECKPOINT), load_checkpoint(run / CHECKPOINT)
    assert _models_equal(full["model"], extended["model"]) and full["metrics"]["kept_epoch"] == extended["metrics"]["kept_epoch"]
    strip = lambda lines: [{k: v for k, v in line.items() if k not in ("seconds", "frames_per_s")} for line in lines]
    assert strip(_lines(run)) == strip(_lines(tmp_path / "full"))  # epoch 3's leak read on resume, as if trained
    # past epoch 3, or once an epoch is kept, keep_from is part of the run: changing it is refused
    with pytest.raises(UserError, match="trainer.keep_from"):
        train(tiny_cfg(*KEEP, "trainer.epochs=6", "trainer.keep_from=4", f"resume={run}"), run)


def test_keep_from_outside_the_run_fails_naming_the_key(tiny_cfg):
    with pytest.raises(UserError, match=r"trainer.keep_from must be 0 \(off\) or an integer from 1 to trainer.epochs"):
        validate_train(tiny_cfg("trainer.epochs=2", "trainer.keep_from=3"))
