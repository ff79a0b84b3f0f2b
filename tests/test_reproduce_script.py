"""scripts/reproduce.sh's scope, with a stub `rpm` that records each command instead of training: a quick look
(fewer seeds than a claim needs) trains Fig. 1's three methods one run per sweep and skips the second world's
grid; the registered study's seed count trains every method, one sweep per method, and runs the grid."""
import os
import subprocess
from pathlib import Path

from rpm_cli.reproduction import FIG1_METHODS, MIN_SEEDS_FOR_A_CLAIM, REPORTING_SEEDS, all_methods

REPO = Path(__file__).resolve().parent.parent


def _commands(tmp_path, **env) -> list[str]:
    stub = tmp_path / "bin" / "rpm"
    stub.parent.mkdir()
    stub.write_text('#!/usr/bin/env bash\necho "rpm $*" >> "$CALLS"\n')
    stub.chmod(0o755)
    calls = tmp_path / "calls"
    env = {**os.environ, "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}", "CALLS": str(calls),
           "OUT": str(tmp_path / "out"), "JOBS": "1", **env}
    subprocess.run(["bash", "scripts/reproduce.sh"], cwd=REPO, env=env, check=True, capture_output=True)
    return calls.read_text().splitlines()


def _trained(commands) -> list[tuple[str, str]]:
    """(method folder, seeds) of each `rpm train -m` of the reproduction layout."""
    out = []
    for c in commands:
        if c.startswith("rpm train -m") and "data=clica" not in c:
            words = dict(w.split("=", 1) for w in c.split() if "=" in w)
            out.append((Path(words["hydra.sweep.dir"]).name, words["seed"]))
    return out


def test_a_quick_look_trains_fig1s_methods_one_run_a_sweep_and_skips_the_grid(tmp_path):
    seeds = REPORTING_SEEDS[:3]
    commands = _commands(tmp_path, SEEDS="3")
    assert sorted(_trained(commands)) == sorted((m, str(s)) for m in FIG1_METHODS for s in seeds)
    assert not [c for c in commands if "data=clica" in c]
    assert any(c.startswith("rpm theory") for c in commands) and commands[-1].startswith("rpm report")


def test_the_registered_seed_count_trains_every_method_in_one_sweep_each_and_runs_the_grid(tmp_path):
    seeds = REPORTING_SEEDS[:MIN_SEEDS_FOR_A_CLAIM]
    commands = _commands(tmp_path, SEEDS=" ".join(map(str, seeds)))
    assert sorted(_trained(commands)) == sorted((m, ",".join(map(str, seeds))) for m in all_methods())
    assert [c for c in commands if "data=clica" in c]
    assert any(c.startswith("rpm theory") for c in commands) and commands[-1].startswith("rpm report")


def test_a_quick_look_takes_the_priors_and_the_grid_it_is_asked_for(tmp_path):
    commands = _commands(tmp_path, SEEDS="2", PRIORS="laplace", CLICA="1")
    assert {m for m, _ in _trained(commands)} == {*FIG1_METHODS, "laplace"}
    assert [c for c in commands if "data=clica" in c]
