"""Multirun sweeps through the CLI, evaluated and summarised."""
import csv
import importlib.util
import json

from PIL import Image

import pytest
import torch

from tests.helpers import TINY, run_rpm

pytestmark = pytest.mark.usefixtures("rpm_available")
GRID = ["prior.lengthscale=6,12", "seed=10,11"]


def _needs(plugin):
    try:
        found = importlib.util.find_spec(f"hydra_plugins.{plugin}") is not None
    except ModuleNotFoundError:  # no Hydra plugin at all: the hydra_plugins namespace does not exist
        found = False
    if not found:
        pytest.skip(f"{plugin} not installed (make install-sweep)")


def _sweep(tmp_path, *extra):
    sweep = tmp_path / "sweep"
    run_rpm(["train", "-m", *TINY, *GRID, *extra, f"hydra.sweep.dir={sweep}"], tmp_path, check=True)
    return sweep


def _check_summary(sweep, tmp_path, n_rows):
    rows = list(csv.DictReader((sweep / "sweep_summary.csv").open()))
    assert len(rows) == n_rows
    assert {r["initial_lengthscale_px"] for r in rows} == {"6", "12"}
    for r in rows:
        # Unprefixed columns are the validation video's (what a sweep may choose on), test_* the test video's.
        evaluation = json.loads((sweep / r["run"] / "evaluation.json").read_text())
        assert float(r["slot_l2_px"]) == pytest.approx(evaluation["val"]["slot_l2_px"])
        assert float(r["test_slot_l2_px"]) == pytest.approx(evaluation["test"]["slot_l2_px"])
        assert float(r["readout_l2_px"]) < float(r["chance_l2_px"])
    for ext in ("png", "pdf"):
        assert (sweep / f"sweep_summary.{ext}").stat().st_size > 5000
    assert Image.open(sweep / "sweep_maps.png").size[0] > 300
    return rows


def test_basic_multirun_then_evaluate_and_figures(tmp_path):
    sweep = _sweep(tmp_path)
    runs = sorted(p.parent for p in sweep.rglob("checkpoint.pt"))
    assert len(runs) == 4
    # Readable and unique: the overrides, then the seed.
    assert {r.name.split("prior.lengthscale-")[1] for r in runs} == {
        f"{ls}_trainer.batch_size-10_trainer.epochs-2_trainer.keep_from-0_trainer.reseed_below-0_trainer.restarts-1"
        f"_seed-{s}"
        for ls in (6, 12) for s in (10, 11)}
    run_rpm(["evaluate", f"sweep_dir={sweep}"], tmp_path, check=True)
    written = ("evaluation.json", "curves.png", "maps.png", "tracking.gif")
    stamps = {r / name: (r / name).stat().st_mtime_ns for r in runs for name in written}
    run_rpm(["evaluate", f"sweep_dir={sweep}"], tmp_path, check=True)  # scores and pictures up to date: skipped
    assert stamps == {path: path.stat().st_mtime_ns for path in stamps}
    (runs[0] / "maps.png").unlink()  # one picture missing: that run's are drawn again, the scores kept
    again = run_rpm(["evaluate", f"run_dir={runs[0]}"], tmp_path, check=True)  # a sweep's run dir as run_dir=
    assert "slot L2" in again.stdout
    redrawn = {path for path in stamps if not path.exists() or path.stat().st_mtime_ns != stamps[path]}
    assert redrawn == {runs[0] / name for name in written[1:]}
    run_rpm(["figures", f"sweep_dir={sweep}"], tmp_path, check=True)
    _check_summary(sweep, tmp_path, 4)
    # The report's tuning table pools a setting's seeds into one row.
    from rpm_cli.report.reproduction import tuning_section

    (tmp_path / "root" / "tuning").mkdir(parents=True)
    (tmp_path / "root" / "tuning" / "grid").symlink_to(sweep)
    rows = [line for line in tuning_section(tmp_path / "root").splitlines() if line.startswith("| grid |")]
    assert len(rows) == 2 and all("| 10, 11 | 2 |" in row and " of 2 |" in row for row in rows)
    assert {"prior.lengthscale=6" in row for row in rows} == {True, False}
    # The setting a search selects is the one with the lower mean validation slot L2, and only that one.
    slot = {row: float(row.split("|")[8].split("±")[0]) for row in rows}
    assert [row.endswith("| **yes** |") for row in rows] == [slot[row] == min(slot.values()) for row in rows]
    # A fresh clone has only the committed sweep_summary.csv: it reads back as the same rows and the same table.
    from rpm_cli.figures.sweep import sweep_rows, summary_rows

    clone = tmp_path / "clone" / "tuning" / "grid"
    clone.mkdir(parents=True)
    (clone / "sweep_summary.csv").write_bytes((sweep / "sweep_summary.csv").read_bytes())
    assert sweep_rows(clone) == summary_rows(sweep)
    assert tuning_section(tmp_path / "clone") == tuning_section(tmp_path / "root")


@pytest.mark.slow  # an optional plugin; the study's sweeps run on the basic launcher
def test_joblib_launcher(tmp_path):
    _needs("hydra_joblib_launcher")
    sweep = _sweep(tmp_path, "hydra/launcher=rpm_joblib")
    run_rpm(["figures", f"sweep_dir={sweep}"], tmp_path, check=True)  # evaluates what is missing
    _check_summary(sweep, tmp_path, 4)


@pytest.mark.slow  # an optional plugin, for clusters
def test_submitit_local_launcher(tmp_path):
    _needs("hydra_submitit_launcher")
    sweep = _sweep(tmp_path, "hydra/launcher=rpm_local")
    run_rpm(["figures", f"sweep_dir={sweep}"], tmp_path, check=True)
    _check_summary(sweep, tmp_path, 4)


@pytest.mark.slow
def test_optuna_sweeper_minimises_slot_l2(tmp_path):
    _needs("hydra_optuna_sweeper")
    sweep = tmp_path / "optuna"
    run_rpm(["train", "-m", *TINY, "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3", "evaluate=true",
             "prior.lengthscale=tag(log,interval(1,128))", f"hydra.sweep.dir={sweep}"], tmp_path, check=True)
    assert "best_value" in (sweep / "optimization_results.yaml").read_text()
    assert len(list(sweep.rglob("evaluation.json"))) == 3


@pytest.mark.slow  # a second multi-run sweep; test_basic_multirun_then_evaluate_and_figures covers the launcher
def test_a_sweep_over_priors_is_summarised_on_a_categorical_axis(tmp_path):
    sweep = tmp_path / "priors"
    run_rpm(["train", "-m", *TINY, "trainer.epochs=1", "prior=gaussian,laplace,cosine", "evaluate=true",
             f"hydra.sweep.dir={sweep}"], tmp_path, check=True)
    proc = run_rpm(["figures", f"sweep_dir={sweep}"], tmp_path, check=True)
    rows = list(csv.DictReader((sweep / "sweep_summary.csv").open()))
    assert sorted(r["prior"] for r in rows) == ["cosine", "gaussian", "laplace"]
    from rpm_cli.figures.sweep import choose_x, summary_rows

    assert choose_x(summary_rows(sweep), None) == "prior" and "sweep_maps.png" in proc.stdout


def test_sweep_value_is_configurable():
    from rpm_cli.apps import sweep_value
    from rpm_cli.errors import UserError

    metrics = {"loss": 2.5, "slot_l2_px": 4.0, "readout_l2_px": 1.0}
    assert sweep_value("auto", metrics) == 4.0
    assert sweep_value("auto", {"loss": 2.5}) == 2.5
    assert sweep_value("readout_l2_px", metrics) == 1.0
    with pytest.raises(UserError, match="needs evaluate=true"):
        sweep_value("slot_l2_px", {"loss": 2.5})


def test_seeds_trained_together_in_one_sweep_equal_each_seed_run_alone(tmp_path):
    """`rpm train -m seed=...` trains K seeds one after another in one process (the way a study saves the
    start-up, imports and videos K times over): each seed's weights and metrics equal its run alone, bit for
    bit (tolerance 0: the same code on the same machine)."""
    from rpm_cli.layout import CHECKPOINT
    from rpm_cli.runs import load_checkpoint, read_metrics

    sweep = tmp_path / "together"
    run_rpm(["train", "-m", *TINY, "seed=21,22", f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=seed-${seed}"],
            tmp_path, check=True)
    for seed in (22,):  # the second job: whatever the first left behind in the process would show here
        alone = tmp_path / f"alone-{seed}"
        run_rpm(["train", *TINY, f"seed={seed}", f"hydra.run.dir={alone}"], tmp_path, check=True)
        together = sweep / f"seed-{seed}"
        ours, theirs = load_checkpoint(together / CHECKPOINT)["model"], load_checkpoint(alone / CHECKPOINT)["model"]
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours), seed
        drop_time = [{k: v for k, v in m.items() if k not in ("seconds", "frames_per_s")} for m in read_metrics(together)]
        assert drop_time == [{k: v for k, v in m.items() if k not in ("seconds", "frames_per_s")}
                             for m in read_metrics(alone)]


def test_a_run_that_diverges_does_not_stop_the_rest_of_its_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_rpm(["train", "-m", *TINY, "experiment=paper", "prior=linear", "prior.init_std=1e20,0.1",
                    "evaluate=true", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert proc.returncode == 0 and "error: loss is nan" in proc.stderr
    finished = [p.parent for p in sweep.rglob("evaluation.json")]
    assert len(finished) == 1 and "init_std-0.1" in finished[0].name


def test_a_sweep_dir_name_past_the_file_name_limit_is_shortened_and_stays_unique():
    from rpm_cli.resolvers import MAX_NAME_BYTES, sweep_subdir

    assert sweep_subdir("prior.lengthscale-6", 10) == "prior.lengthscale-6_seed-10"
    long_a, long_b = "x" * 300 + "_a-1", "x" * 300 + "_a-2"
    name_a, name_b = sweep_subdir(long_a, 10), sweep_subdir(long_b, 10)
    assert len(name_a.encode()) == MAX_NAME_BYTES and name_a.startswith("x" * 200) and name_a.endswith("_seed-10")
    assert name_a != name_b and sweep_subdir(long_a, 10) == name_a  # unique, and the same on a second launch
