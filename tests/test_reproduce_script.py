"""scripts/reproduce.sh's scope, with a stub `rpm` that records each command instead of training: a quick look
(fewer seeds than a claim needs) trains Fig. 1's three methods one run per sweep and skips the second world's
grid; the registered study's seed count trains every method, one sweep per method, and runs the grid. And
scripts/seed_study.sh's: every method on every speed seed once, in lanes of (nearly) equal run counts."""
import os
import subprocess
from pathlib import Path

from rpm_cli.reproduction import (FIG1_METHODS, MIN_SEEDS_FOR_A_CLAIM, REPORTING_SEEDS, SPEED_SEEDS, all_methods,
                                  lane_sweeps)

REPO = Path(__file__).resolve().parent.parent


def _commands(tmp_path, script="reproduce.sh", **env) -> list[str]:
    stub = tmp_path / "bin" / "rpm"
    stub.parent.mkdir()
    stub.write_text('#!/usr/bin/env bash\necho "rpm $*" >> "$CALLS"\n')
    stub.chmod(0o755)
    calls = tmp_path / "calls"
    env = {**os.environ, "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}", "CALLS": str(calls),
           "OUT": str(tmp_path / "out"), "JOBS": "1", **env}
    subprocess.run(["bash", f"scripts/{script}"], cwd=REPO, env=env, check=True, capture_output=True)
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


def test_the_seed_study_trains_every_method_on_every_speed_seed_once_in_lanes_of_equal_size(tmp_path):
    commands = _commands(tmp_path, script="seed_study.sh", JOBS="2", OMP_NUM_THREADS="2")  # nproc: 2 cores
    runs, lanes = [], {}
    for c in commands:
        words = dict(w.split("=", 1) for w in c.split() if "=" in w)
        methods = words["prior"].split(",") if "prior" in words else ["supervised"]
        assert words["hydra.sweep.subdir"] == ("${prior.name}/seed-${seed}" if "prior" in words else "seed-${seed}")
        runs += [(m, int(s)) for m in methods for s in words["seed"].split(",")]
    assert sorted(runs) == sorted((m, s) for m in all_methods() for s in SPEED_SEEDS)  # 225 runs, each once
    assert len(SPEED_SEEDS) == 25 and all("evaluate=true" in c and "trainer.threads=1" in c for c in commands)
    assert len(commands) == 4 and (tmp_path / "out" / "timing.json").is_file()  # priors + supervised per lane
    for lane, _, seeds, _, _, override in (line.split() for line in lane_sweeps(tmp_path, all_methods(), SPEED_SEEDS, 2)):
        lanes[lane] = lanes.get(lane, 0) + len(seeds.split(",")) * len(override.split(","))
    assert sorted(lanes.values()) == [112, 113]


def test_a_seed_study_with_fewer_runs_than_lanes_leaves_a_lane_idle_without_failing(tmp_path):
    commands = _commands(tmp_path, script="seed_study.sh", JOBS="2", SEEDS="1", METHODS="gaussian")
    assert len(commands) == 1 and f"seed={SPEED_SEEDS[0]} " in commands[0]


def test_the_seed_study_refuses_seeds_outside_the_speed_role_before_any_run(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "SEEDS": f"{REPORTING_SEEDS[0]}"}
    done = subprocess.run(["bash", "scripts/seed_study.sh"], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "must be speed seeds" in done.stderr
    assert not (tmp_path / "out" / "default").exists()
