"""`rpm train resume=`: what it refuses, how it extends a run, a busy run dir, earlier checkpoints, sweeps
started again."""
import json
import subprocess

import pytest
import torch

from rpm_cli.layout import CHECKPOINT, METRICS
from rpm_cli.runs import load_checkpoint, run_lock
from rpm_cli.train import train
from tests.helpers import TINY, compose_cfg, run_rpm, run_rpm_here


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    run_dir = root / "run"
    train(compose_cfg(tmp_path=root), run_dir)
    return run_dir


def test_resume_refuses_an_override_it_would_drop(finished_run, tmp_path, monkeypatch, capsys):
    code, stderr = run_rpm_here(["train", f"resume={finished_run}", "trainer.lr=0.1"], tmp_path, monkeypatch, capsys)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert "trainer.lr cannot be overridden (allowed with resume:" in lines[0] and "trainer.epochs" in lines[0]


def test_resume_extends_a_finished_run_by_trainer_epochs(finished_run, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    subprocess.run(["cp", "-r", str(finished_run), str(run_dir)], check=True)
    code, stderr = run_rpm_here(["train", f"resume={run_dir}", "trainer.epochs=1"], tmp_path, monkeypatch, capsys)
    assert code == 2 and "trainer.epochs must be more than the 2 epochs" in stderr
    run_rpm(["train", f"resume={run_dir}", "trainer.epochs=3", "trainer.progress=false"], tmp_path, check=True)
    state = load_checkpoint(run_dir / CHECKPOINT)
    assert state["epoch"] == 3 and state["finished"] and state["config"]["trainer"]["epochs"] == 3
    assert [json.loads(x)["epoch"] for x in (run_dir / METRICS).read_text().splitlines()] == [1, 2, 3]


def test_a_second_process_on_a_busy_run_dir_is_refused(finished_run, tmp_path):
    with run_lock(finished_run):
        proc = run_rpm(["train", f"resume={finished_run}", "trainer.epochs=5"], tmp_path)
    assert proc.returncode == 2 and "is in use by another rpm train" in proc.stderr
    assert load_checkpoint(finished_run / CHECKPOINT)["epoch"] == 2  # untouched


@pytest.mark.parametrize("args,words", [
    (["~trainer.lr"], "trainer.lr cannot be deleted"),
    (["seed=11"], "seed cannot be overridden"),
    (["logger=tensorboard"], "logger cannot be overridden"),
])
def test_resume_refuses_every_other_override_in_any_form(finished_run, tmp_path, args, words, monkeypatch, capsys):
    for resume in (f"resume={finished_run}", f"++resume={finished_run}"):
        code, stderr = run_rpm_here(["train", resume, *args], tmp_path, monkeypatch, capsys)
        assert code == 2 and words in stderr and len(stderr.strip().splitlines()) == 1


def test_a_run_in_the_earlier_checkpoint_layout_resumes_and_extends(finished_run, tmp_path):
    """Old checkpoints kept trainer.objective/name, data.name, no objective, logger, no `_target_` for the
    dataset and encoder, no prior_lengthscale or newer keys."""
    run_dir = tmp_path / "old"
    subprocess.run(["cp", "-r", str(finished_run), str(run_dir)], check=True)
    state = torch.load(run_dir / CHECKPOINT, weights_only=True)
    config = state["config"]
    config["trainer"].update(name="paper", objective=config.pop("objective")["name"])
    config["data"]["name"] = "balls"
    config["data"].pop("_target_"), config["data"].pop("prior_lengthscale"), config["encoder"].pop("_target_")
    for section, key in (("data", "val_seed"), ("data", "val_frames"), ("data", "background"), ("data", "antialias"),
                         ("encoder", "latent_units"), ("trainer", "batchnorm_batch")):
        config[section].pop(key)
    config.pop("logger"), config.pop("max_memory_gb")
    config["resume"] = None
    torch.save(state, run_dir / CHECKPOINT)
    run_rpm(["train", f"resume={run_dir}", "trainer.epochs=3", "trainer.progress=false"], tmp_path, check=True)
    run_rpm(["evaluate", f"run_dir={run_dir}"], tmp_path, check=True)
    assert load_checkpoint(run_dir / CHECKPOINT)["epoch"] == 3


@pytest.mark.parametrize("objective", ["infonce", "supervised"])  # supervised: its stored config has no prior
def test_a_sweep_started_again_continues_instead_of_failing(tmp_path, objective):
    sweep = tmp_path / "sweep"
    args = ["train", "-m", *TINY, f"objective={objective}", "trainer.epochs=1", "seed=10,11",
            f"hydra.sweep.dir={sweep}"]
    run_rpm(args, tmp_path, check=True)
    first = {p: p.stat().st_mtime_ns for p in sweep.rglob("checkpoint.pt")}
    run_rpm(args, tmp_path, check=True)  # finished jobs are reused, not retrained or refused
    assert {p: p.stat().st_mtime_ns for p in sweep.rglob("checkpoint.pt")} == first and len(first) == 2
