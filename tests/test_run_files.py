"""A run's files under faults: a full disk during a checkpoint or a video cache, two processes sharing a
new cache, a failed run that must not delete other work."""
import errno
import subprocess

import numpy as np
import pytest
import torch

from rpm_cli.errors import UserError
from rpm_cli.layout import CHECKPOINT, METRICS
from rpm_cli.runs import load_checkpoint
from rpm_cli.train import train
from tests.helpers import TINY, run_rpm_here


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(tiny_cfg, tmp_path, monkeypatch):
    import rpm_cli.runs as runs

    real_save, calls = torch.save, {"n": 0}

    def save_then_fill_up(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the epoch-2 checkpoint
            real_save(obj, f, *args, **kwargs)  # part of it reaches the temporary file, then the disk is full
            _disk_full()
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(runs.torch, "save", save_then_fill_up)
    with pytest.raises(UserError, match=r"cannot write .*checkpoint.pt: No space left on device \(the previous file"):
        train(tiny_cfg("trainer.epochs=3"), tmp_path / "run")
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT)
    assert state["epoch"] == 1
    assert not [p for p in (tmp_path / "run").iterdir() if ".tmp" in p.name]


def test_disk_full_while_caching_a_video_leaves_no_partial_file(tiny_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez", _disk_full)
    with pytest.raises(UserError, match="cannot write .*balls-.*npz: No space left on device"):
        train(tiny_cfg(), tmp_path / "run")
    assert not list((tmp_path / "cache").glob("*"))


@pytest.mark.slow  # two concurrent processes
def test_two_trainings_share_a_new_video_cache_at_once(tmp_path):
    cache = tmp_path / "cache"
    procs = [subprocess.Popen(["rpm", "train", *TINY, f"data.cache_dir={cache}", f"hydra.run.dir={tmp_path / name}"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    files = sorted(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # one training video, written once or replaced whole
    with np.load(files[0]) as npz:
        assert npz["frames"].shape == (60, 3, 64, 64)
    assert (tmp_path / "a" / METRICS).read_text().split('"seconds"')[0] == \
        (tmp_path / "b" / METRICS).read_text().split('"seconds"')[0]


def test_a_failed_run_never_deletes_a_dir_that_holds_other_work(tmp_path, monkeypatch, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    code, _ = run_rpm_here(["train", *TINY, "trainer.lr=-1", "hydra.run.dir=."], tmp_path, monkeypatch, capsys)
    assert code == 2 and (tmp_path / "notes.txt").read_text() == "mine"
    assert not (tmp_path / ".hydra").exists()
