"""Resume rules, filesystem faults, concurrency, and fuzzed configs that never end in a traceback."""
import errno
import json
import math
import subprocess

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from rpm_cli.config import DOMAINS, validate_train
from rpm_cli.errors import UserError
from rpm_cli.layout import CHECKPOINT, METRICS
from rpm_cli.runs import load_checkpoint, run_lock
from rpm_cli.train import train
from tests.helpers import TINY, compose_cfg, examples, run_rpm


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    run_dir = root / "run"
    train(compose_cfg(tmp_path=root), run_dir)
    return run_dir


def test_resume_refuses_an_override_it_would_drop(finished_run, tmp_path):
    proc = run_rpm(["train", f"resume={finished_run}", "trainer.lr=0.1"], tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "trainer.lr cannot be overridden (allowed with resume:" in lines[0] and "trainer.epochs" in lines[0]


def test_resume_extends_a_finished_run_by_trainer_epochs(finished_run, tmp_path):
    run_dir = tmp_path / "run"
    subprocess.run(["cp", "-r", str(finished_run), str(run_dir)], check=True)
    shorter = run_rpm(["train", f"resume={run_dir}", "trainer.epochs=1"], tmp_path)
    assert shorter.returncode == 2 and "trainer.epochs must be more than the 2 epochs" in shorter.stderr
    run_rpm(["train", f"resume={run_dir}", "trainer.epochs=3", "trainer.progress=false"], tmp_path, check=True)
    state = load_checkpoint(run_dir / CHECKPOINT)
    assert state["epoch"] == 3 and state["finished"] and state["config"]["trainer"]["epochs"] == 3
    assert [json.loads(x)["epoch"] for x in (run_dir / METRICS).read_text().splitlines()] == [1, 2, 3]


def test_a_second_process_on_a_busy_run_dir_is_refused(finished_run, tmp_path):
    with run_lock(finished_run):
        proc = run_rpm(["train", f"resume={finished_run}", "trainer.epochs=5"], tmp_path)
    assert proc.returncode == 2 and "is in use by another rpm train" in proc.stderr
    assert load_checkpoint(finished_run / CHECKPOINT)["epoch"] == 2  # untouched


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


# --- property-based fuzzing of the validator ---------------------------------------------------------------

BASE = compose_cfg()
SURELY_BAD = st.one_of(st.just(float("nan")), st.just(float("inf")), st.just(-float("inf")), st.just(10**30),
                       st.just(-(10**30)), st.lists(st.integers(), max_size=3), st.just(""), st.just({"a": 1}))
ANY_VALUE = st.one_of(SURELY_BAD, st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                      st.booleans(), st.text(max_size=8), st.none())
KEYS = sorted(k for k in DOMAINS if OmegaConf.select(BASE, k) is not None or k == "max_memory_gb")


def _with(overrides: dict):
    cfg = OmegaConf.create(OmegaConf.to_container(BASE, resolve=True))
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


def _integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# An independent, coarse reading of every key's domain, written from what each key means rather than from
# DOMAINS or from its default's type: what any valid value has. Lengths in pixels are continuous (ball
# centres are floats), so data.ball_diameter and data.step take any number (data.step=1.0 is a valid step:
# the video key stores it as a float); counts, sizes and seeds are integers.
ORACLE = {
    **dict.fromkeys(["seed", "data.seed", "data.val_seed", "data.test_seed", "data.image_size", "data.n_balls",
                     "data.n_frames", "data.val_frames", "data.test_frames", "encoder.hidden_channels",
                     "encoder.n_maps", "trainer.epochs", "trainer.restarts", "trainer.restart_epochs",
                     "trainer.batch_size", "trainer.threads"], _integer),
    **dict.fromkeys(["data.ball_diameter", "data.step", "data.heading_noise_deg", "encoder.map_bias_init",
                     "trainer.lr", "trainer.momentum"], _number),
    **dict.fromkeys(["evaluate", "debug", "data.antialias", "encoder.skip_background", "trainer.progress"],
                    lambda v: isinstance(v, bool)),
    **dict.fromkeys(["sweep_metric", "data.background", "encoder.name", "encoder.latent_units", "objective.name",
                     "trainer.optimizer", "trainer.loss_reduction", "trainer.batchnorm_batch", "trainer.device",
                     "logger.name"], lambda v: isinstance(v, str) and v.isidentifier()),
    "max_memory_gb": lambda v: v is None or (_number(v) and v > 0),  # null: the memory available
    "data.cache_dir": lambda v: v is None or (isinstance(v, str) and v.strip() != ""),  # null: no cache
}


def test_every_domain_has_an_oracle_that_accepts_its_default():
    assert sorted(ORACLE) == sorted(DOMAINS)
    for key in KEYS:
        assert ORACLE[key](OmegaConf.select(BASE, key)), key


@pytest.mark.fuzz
@settings(max_examples=examples(300))
@given(st.dictionaries(st.sampled_from(KEYS), ANY_VALUE, min_size=1, max_size=3))
@example({"data.cache_dir": None})  # null is a valid cache_dir (no cache)
@example({"data.step": 1.0})  # a float step is valid: the old oracle, reading the default's type, said no
def test_fuzzed_configs_are_accepted_only_inside_their_domains(overrides):
    cfg = _with(overrides)
    try:
        validate_train(cfg)
    except UserError as exc:
        message = str(exc)
        assert "\n" not in message and message.strip()
        # It names a key: one of those drawn, or one whose rule reads a drawn key (batch size, seeds, ...).
        assert any(name in message for name in [*DOMAINS, "prior", "config", "run would need"]), message
        return
    for key, value in overrides.items():
        assert ORACLE[key](value), f"{key}={value!r} was accepted"


@pytest.mark.fuzz
@settings(max_examples=examples(100))
@given(st.sampled_from(KEYS), SURELY_BAD)
@example("max_memory_gb", 10**30)  # max_memory_gb once had no upper bound
def test_surely_bad_values_are_always_refused(key, value):
    with pytest.raises(UserError):
        validate_train(_with({key: value}))


@pytest.mark.fuzz
@settings(max_examples=examples(100))
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=20))
def test_fuzzed_unknown_keys_are_one_line(key):
    from rpm_cli.overrides import check

    key = key.strip(".").replace("..", ".") or "x"
    message = check("train", [f"{key}=1"])
    known = OmegaConf.select(BASE, key, default="<missing>") != "<missing>"
    assert known or (message and "\n" not in message and key in message)


def test_the_domain_table_covers_every_trainable_key():
    def leaves(node, prefix=""):
        for k, v in node.items():
            if OmegaConf.is_dict(v):
                yield from leaves(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}"

    uncovered = [k for k in leaves(BASE) if k not in DOMAINS and not k.startswith("prior.") and k != "resume"]
    assert uncovered == [], "keys without a domain: " + ", ".join(uncovered)


CLI_VALUES = st.sampled_from(["-1", "0", "1", "2", "1.5", "nan", "inf", "abc", "''", "[1,2]", "null", "true", "1e9"])


@pytest.mark.slow
@pytest.mark.fuzz
@settings(max_examples=30)
@given(st.dictionaries(st.sampled_from(KEYS), CLI_VALUES, min_size=1, max_size=2))
def test_fuzzed_command_lines_exit_0_2_or_3_without_a_traceback(tmp_path_factory, overrides):
    cwd = tmp_path_factory.mktemp("fuzz")
    proc = run_rpm(["train", *TINY, "trainer.epochs=1", *[f"{k}={v}" for k, v in overrides.items()]], cwd, timeout=600)
    assert proc.returncode in (0, 2, 3), proc.stderr
    assert "Traceback" not in proc.stderr
    if proc.returncode:
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not (cwd / "outputs").exists() or proc.returncode == 3


@pytest.mark.parametrize("args,words", [
    (["~trainer.lr"], "trainer.lr cannot be deleted"),
    (["seed=3"], "seed cannot be overridden"),
    (["logger=tensorboard"], "logger cannot be overridden"),
])
def test_resume_refuses_every_other_override_in_any_form(finished_run, tmp_path, args, words):
    for resume in (f"resume={finished_run}", f"++resume={finished_run}"):
        proc = run_rpm(["train", resume, *args], tmp_path)
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_run_from_before_the_refactor_resumes_and_extends(finished_run, tmp_path):
    """Old checkpoints kept trainer.objective/name, data.name, no objective, logger or newer keys."""
    run_dir = tmp_path / "old"
    subprocess.run(["cp", "-r", str(finished_run), str(run_dir)], check=True)
    state = torch.load(run_dir / CHECKPOINT, weights_only=True)
    config = state["config"]
    config["trainer"].update(name="paper", objective=config.pop("objective")["name"])
    config["data"]["name"] = "balls"
    for section, key in (("data", "val_seed"), ("data", "val_frames"), ("data", "background"), ("data", "antialias"),
                         ("encoder", "latent_units"), ("trainer", "batchnorm_batch")):
        config[section].pop(key)
    config.pop("logger"), config.pop("max_memory_gb")
    config["resume"] = None
    torch.save(state, run_dir / CHECKPOINT)
    run_rpm(["train", f"resume={run_dir}", "trainer.epochs=3", "trainer.progress=false"], tmp_path, check=True)
    run_rpm(["evaluate", f"run_dir={run_dir}"], tmp_path, check=True)
    assert load_checkpoint(run_dir / CHECKPOINT)["epoch"] == 3


def test_a_failed_run_never_deletes_a_dir_that_holds_other_work(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    proc = run_rpm(["train", *TINY, "trainer.lr=-1", "hydra.run.dir=."], tmp_path)
    assert proc.returncode == 2 and (tmp_path / "notes.txt").read_text() == "mine"
    assert not (tmp_path / ".hydra").exists()


def test_a_sweep_started_again_continues_instead_of_failing(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["train", "-m", *TINY, "trainer.epochs=1", "seed=0,1", f"hydra.sweep.dir={sweep}"]
    run_rpm(args, tmp_path, check=True)
    first = {p: p.stat().st_mtime_ns for p in sweep.rglob("checkpoint.pt")}
    run_rpm(args, tmp_path, check=True)  # finished jobs are reused, not retrained or refused
    assert {p: p.stat().st_mtime_ns for p in sweep.rglob("checkpoint.pt")} == first and len(first) == 2


def test_retrieval_gives_ties_no_credit():
    from rpm_cli.evaluate import prior_scores

    class Flat(torch.nn.Module):  # scores every candidate alike
        prior = torch.nn.Linear(1, 1)

        def prior_logits(self, z, z_next):
            return torch.zeros(len(z), len(z_next))

    scores = prior_scores(Flat(), np.random.default_rng(0).random((12, 4)) * 64, 64, batch_size=4)
    assert scores["retrieval_top1"] == 0 and scores["retrieval_mrr"] == pytest.approx(1 / 11)
    assert scores["infonce_estimate_all"] == pytest.approx(math.log(10 / 11))  # log N - log(N + 1), N = 10
