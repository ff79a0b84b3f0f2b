"""Divergence guard, kill-and-resume, safe loading, atomic files."""
import json
import os
import signal
import subprocess
import time

import pytest
import torch

from rpm_cli.errors import TrainingDiverged, UserError
from rpm_cli.layout import CHECKPOINT, METRICS
from rpm_cli.runs import load_checkpoint
from rpm_cli.models.model import Model
from rpm_cli.train import train
from tests.helpers import TINY, run_rpm, run_rpm_here


def test_nan_loss_stops_training_and_keeps_last_good_checkpoint(tiny_cfg, tmp_path, monkeypatch):
    cfg = tiny_cfg("trainer.epochs=4")
    real_loss, calls = Model.loss_terms, {"n": 0}
    steps_per_epoch = 59 // 10

    def loss_that_blows_up(self, frames, centres):
        calls["n"] += 1
        value, terms = real_loss(self, frames, centres)
        return (value * float("nan") if calls["n"] == steps_per_epoch + 2 else value), terms

    monkeypatch.setattr(Model, "loss_terms", loss_that_blows_up)
    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 2, step 2; the last good checkpoint \(epoch 1\)"):
        train(cfg, tmp_path / "run")
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT)
    assert state["epoch"] == 1 and not state["finished"]
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_divergence_exits_3_with_one_line(tmp_path):
    proc = run_rpm(["train", *TINY, "experiment=paper", "prior=linear", "prior.init_std=1e20"], tmp_path)
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: loss is nan at epoch 1") and "Traceback" not in proc.stderr


def test_truncated_foreign_and_garbage_checkpoints_are_refused(tiny_cfg, tmp_path):
    train(tiny_cfg(), tmp_path / "run")
    good = (tmp_path / "run" / CHECKPOINT).read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(UserError, match=f"checkpoint {bad} is truncated, corrupt"):
        load_checkpoint(bad)
    torch.save({"weights": torch.zeros(3)}, bad)
    with pytest.raises(UserError, match="is not an rpm checkpoint"):
        load_checkpoint(bad)


def test_pickled_code_is_not_executed(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "rpm-checkpoint-v1", "payload": Exploit()}, path)
    with pytest.raises(UserError):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_no_temporary_files_left_behind(tiny_cfg, tmp_path):
    train(tiny_cfg(), tmp_path / "run")
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]


# Big enough that an epoch takes a noticeable time, so the kill lands mid-training.
RESUMABLE = [*TINY, "data.image_size=96", "data.ball_diameter=16", "data.n_frames=200",
             "trainer.epochs=6", "trainer.optimizer=adam", "seed=3"]


def _final_numbers(run_dir):
    lines = [json.loads(x) for x in (run_dir / METRICS).read_text().splitlines()]
    state = load_checkpoint(run_dir / CHECKPOINT)
    return [(m["epoch"], m["loss"], m["lengthscale_px"]) for m in lines], state["model"]


def test_sigkilled_run_resumes_to_exactly_the_uninterrupted_result(tmp_path, monkeypatch, capsys):
    clean = tmp_path / "clean"
    run_rpm(["train", *RESUMABLE, f"hydra.run.dir={clean}"], tmp_path, check=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(["rpm", "train", *RESUMABLE, f"hydra.run.dir={killed}"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (killed / METRICS).exists() and len((killed / METRICS).read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    epochs_done = load_checkpoint(killed / CHECKPOINT)["epoch"]
    assert 1 <= epochs_done < 6, "the kill should land mid-training"

    run_rpm(["train", f"resume={killed}"], tmp_path, check=True)
    (clean_lines, clean_weights), (resumed_lines, resumed_weights) = _final_numbers(clean), _final_numbers(killed)
    assert resumed_lines == clean_lines
    assert all(torch.equal(clean_weights[k], resumed_weights[k]) for k in clean_weights)
    assert (killed / ".hydra/config.yaml").exists() and (killed / ".hydra-resume/overrides.yaml").exists()
    code, stderr = run_rpm_here(["train", f"resume={killed}"], tmp_path, monkeypatch, capsys)
    assert code == 2 and "already finished" in stderr
