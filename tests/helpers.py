"""Shared by the tests: the tiny config, composing it, and running the installed `rpm` as a user does."""
import logging
import os
import subprocess

import pytest
from hydra import compose, initialize_config_dir

from rpm_cli import CONFIG_DIR
from rpm_cli.resolvers import register_resolvers
from rpm_cli.train import Trainer, train

# Tiny but real: 64x64 frames, 2 balls, 60 frames; every test video renders in milliseconds.
TINY = [
    "data.image_size=64", "data.n_balls=2", "data.ball_diameter=12", "data.n_frames=60",
    "data.val_frames=40", "data.test_frames=40", "trainer.epochs=2", "trainer.batch_size=10",
    "trainer.progress=false", "trainer.restarts=1",
    # The default's threshold is a share of a map's mass set at paper size, where a uniform map has 0.049; on
    # 64x64 frames with 12-px balls a uniform map has 0.11, so the tiny runs keep re-seeding off unless a test
    # turns it on.
    "trainer.reseed_below=0",
    "trainer.keep_from=0",  # the last epoch ends a tiny run unless a test asks for the least-leak epoch
]


EXPLORE_FACTOR = 20  # `make fuzz` (HYPOTHESIS_PROFILE=explore) draws this many times the default examples


def examples(n: int) -> int:
    """A property test's example count: n in the deterministic default suite, more when exploring."""
    return n * EXPLORE_FACTOR if os.environ.get("HYPOTHESIS_PROFILE") == "explore" else n


def compose_cfg(overrides=(), config_name="train", tmp_path=None, base=TINY):
    """A config as `rpm` composes it, from `base` (the tiny balls by default) and `overrides`."""
    register_resolvers()  # as `rpm` does before composing
    extra = [f"data.cache_dir={tmp_path / 'cache'}"] if tmp_path is not None else []
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=[*base, *extra, *overrides])


def run_rpm(args, cwd, check=False, timeout=300, env=None):
    """The installed `rpm` script in a subprocess, as a user runs it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(["rpm", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"rpm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_rpm_here(args, cwd, monkeypatch, capsys) -> tuple[int, str]:
    """`rpm args` in this process, as the script would run it from `cwd`: (exit code, stderr). For the many
    bad command lines whose refusal is all a test reads: a subprocess pays torch's import (about 5 s) for each.
    The allocator's re-exec is off, or it would replace the test process; tests through run_rpm keep it."""
    from rpm_cli import cli

    monkeypatch.chdir(cwd)
    monkeypatch.setenv("RPM_ALLOCATOR", "default")
    loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values()
                                      if isinstance(v, logging.Logger))]
    before = {lg: (list(lg.handlers), lg.level, lg.disabled, lg.propagate) for lg in loggers}
    try:
        code = cli.main(list(args))
    except SystemExit as exc:
        code = exc.code
    finally:  # Hydra's job logging added file handlers into the run dir: later tests must not write there
        for lg, (handlers, level, disabled, propagate) in before.items():
            for handler in set(lg.handlers) - set(handlers):
                handler.close()
            lg.handlers[:], lg.level, lg.disabled, lg.propagate = handlers, level, disabled, propagate
        for name, lg in list(logging.Logger.manager.loggerDict.items()):
            if isinstance(lg, logging.Logger) and lg not in before:
                for handler in lg.handlers[:]:
                    handler.close()
                    lg.removeHandler(handler)
    return code, capsys.readouterr().err


def train_killed_at_epoch(cfg, run_dir, n: int, monkeypatch) -> None:
    """Train as a run killed (KeyboardInterrupt) when its n-th epoch, counting every start's, begins."""
    real_epoch, calls = Trainer.epoch, {"n": 0}

    def killed(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real_epoch(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "epoch", killed)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, run_dir)
