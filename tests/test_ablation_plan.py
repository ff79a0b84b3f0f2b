"""`make ablations`'s plan (rpm_cli.reproduction): scripts/ablations.sh runs it and the report reads it, so the
sweep names, seeds and overrides are checked here once, without training."""
import os
import subprocess
from pathlib import Path

import pytest

from omegaconf import OmegaConf

from rpm_cli import reproduction
from rpm_cli.reproduction import (ABLATION_PARTS, PRESETS, RECIPE_CHANGES, REPORTING_SEEDS, SAME_RUNS, SPENT_SEEDS,
                                  TUNED_SHIFT, TUNING_SEEDS, ablation_plan, open_choices, prior_names)
from rpm_cli.report import ablations as report
from tests.helpers import compose_cfg

REPO = Path(__file__).resolve().parent.parent
EVERY_SWEEP = ablation_plan(ABLATION_PARTS, recipes=tuple(PRESETS), priors=prior_names())  # whatever the env picks


def _seeds(sweep) -> set[int]:
    (value,) = [o.removeprefix("seed=") for o in sweep.overrides.split() if o.startswith("seed=")]
    return {int(s) for s in value.split(",")}


def test_sweep_names_are_unique():
    names = [s.name for s in ablation_plan()]
    assert len(names) == len(set(names))
    folders = [(s.part, s.name) for s in EVERY_SWEEP]
    assert len(folders) == len(set(folders))


def test_every_sweep_runs_on_ten_tuning_seeds():
    for sweep in EVERY_SWEEP:
        seeds = _seeds(sweep)
        # Seeds 1-9 and 5000-5999 belong to neither protocol; no sweep may use them.
        assert not seeds & {*range(1, 10), *range(5000, 6000)}, sweep.name
        assert seeds <= set(TUNING_SEEDS) and len(seeds) >= 10, sweep.name
        assert not seeds & {*REPORTING_SEEDS, *SPENT_SEEDS}, sweep.name


def test_every_sweep_the_report_reads_is_in_the_plan():
    planned = {(s.part, s.name) for s in EVERY_SWEEP}
    committed = REPO / "outputs" / "reproduce" / "ablations"
    found = {(p.parent.name, p.name) for p in committed.glob("*/*") if (p / "sweep_summary.csv").exists()}
    assert found and found <= planned  # a committed sweep missing from the plan would drop out of REPORT.md
    # The report has words for each change and choice the plan makes, and for nothing else.
    assert report.CHANGE_WORDS.keys() == RECIPE_CHANGES.keys()
    for recipe in PRESETS:
        assert report.CHOICE_WORDS.keys() == open_choices(recipe).keys()


def test_the_report_ignores_a_folder_outside_the_plan(monkeypatch):
    rows = [{"seed": 10, "slot_l2_px": 1.0}]
    monkeypatch.setattr(report, "_sweeps", lambda root, part: {"tuned-default": rows, "tuned-typo": rows})
    assert [s.name for s in report._planned(None, "choices")] == ["tuned-default"]


def _one_run(sweep, key="", value="") -> list[str]:
    """The sweep's overrides for one run: its first seed, key at value, any other list at its first value."""
    pairs = (o.split("=", 1) for o in sweep.overrides.split())
    return [f"{k}={value if k == key else v.split(',')[0]}" for k, v in pairs]


@pytest.mark.parametrize("alias", sorted(SAME_RUNS))
def test_a_sweep_shown_again_is_the_same_config_as_the_runs_it_borrows(alias):
    by_folder = {(s.part, s.name): s for s in EVERY_SWEEP}
    sweep, same = by_folder[alias], SAME_RUNS[alias]
    assert sweep.same_as == same and same.key in ("", *(o.split("=")[0] for o in by_folder[same.part, same.name]
                                                        .overrides.split()))
    composed = [OmegaConf.to_container(compose_cfg(overrides, base=()), resolve=True) for overrides in
                (_one_run(sweep), _one_run(by_folder[same.part, same.name], same.key, same.value))]
    assert composed[0] == composed[1]
    assert composed[0]["seed"] == 10


def test_the_script_trains_a_sweep_shown_again_only_where_its_source_is_not_planned(capsys):
    reproduction.main(["ablations", "out"])
    default = {line.split()[2] for line in capsys.readouterr().out.splitlines()}
    assert {f"out/{part}/{name}" for part, name in SAME_RUNS}.isdisjoint(default)
    assert {"out/lengthscale/true", "out/recipe/gaussian-tuned-shift", "out/choices/tuned-units"} <= default
    reproduction.main(["ablations", "out", "--parts", "choices", "--recipes", "tuned"])
    alone = {line.split()[2] for line in capsys.readouterr().out.splitlines()}
    assert {"out/choices/tuned-default", "out/choices/tuned-theta0", "out/choices/tuned-shift"} <= alone


def test_the_plan_of_one_part_by_hand(capsys):
    reproduction.main(["ablations", "out", "--parts", "choices", "--recipes", "paper"])
    base = "trainer=paper prior=gaussian seed=10,11,12,13,14,15,16,17,18,19"
    assert capsys.readouterr().out.splitlines() == [
        f"choices paper-default out/choices/paper-default {base}",
        f"choices paper-units out/choices/paper-units encoder.latent_units=pixels,signed {base}",
        f"choices paper-batchnorm out/choices/paper-batchnorm trainer.batchnorm_batch=separate {base}",
        f"choices paper-theta0 out/choices/paper-theta0 prior.lengthscale=8 {base}",
        f"choices paper-sum out/choices/paper-sum trainer.loss_reduction=sum {base}",
        f"choices paper-shift out/choices/paper-shift encoder.map_bias_init={TUNED_SHIFT} {base}",
        f"choices paper-background out/choices/paper-background data.background=white {base}",
        f"choices paper-antialias out/choices/paper-antialias data.antialias=false {base}",
    ]


@pytest.mark.parametrize("flag, value", [("--parts", "recipe bogus"), ("--recipes", "fast"), ("--priors", "gausian")])
def test_a_misspelt_name_is_refused(flag, value):
    with pytest.raises(SystemExit):
        reproduction.main(["ablations", "out", flag, value])


def test_the_script_runs_the_plan_and_skips_finished_sweeps(tmp_path):
    stub = tmp_path / "bin" / "rpm"  # records each command instead of training
    stub.parent.mkdir()
    stub.write_text('#!/usr/bin/env bash\necho "rpm $*" >> "$CALLS"\n')
    stub.chmod(0o755)
    out, calls = tmp_path / "out", tmp_path / "calls"
    (out / "lengthscale" / "false").mkdir(parents=True)
    (out / "lengthscale" / "false" / "sweep_summary.csv").touch()  # finished earlier
    env = {**os.environ, "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}", "CALLS": str(calls),
           "OUT": str(out), "PARTS": "lengthscale", "JOBS": "1"}
    subprocess.run(["bash", "scripts/ablations.sh"], cwd=REPO, env=env, check=True, capture_output=True)
    sweep = out / "lengthscale" / "true"
    assert calls.read_text().splitlines() == [
        "rpm train -m evaluate=true trainer.threads=1 trainer.progress=false prior=gaussian "
        "prior.lengthscale=2,4,8,16,32,64 prior.learn_lengthscale=true seed=10,11,12,13,14,15,16,17,18,19 "
        f"hydra.sweep.dir={sweep}",
        f"rpm figures sweep_dir={sweep}",
    ]
    assert (out / "logs" / "lengthscale-true.log").exists()
