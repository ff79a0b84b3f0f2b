"""Every Fig. 1 panel on tiny runs, the P(z'|z) computation by hand, and the CLI."""
import json
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

from rpm_cli.evaluate import evaluate_run
from rpm_cli.figures.fig1 import build_figures, next_frame_probabilities
from rpm_cli.plotting import save_figure
from rpm_cli.reproduction import STUDY_RECIPES
from rpm_cli.models.priors import GaussianPrior
from rpm_cli.train import train
from tests.helpers import compose_cfg, run_rpm


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fig1")
    runs = {}
    for method, overrides in {"gaussian": [], "linear": ["prior=linear"], "supervised": ["objective=supervised"]}.items():
        for seed in (0, 1):
            run_dir = root / "tuned" / method / f"seed-{seed}"  # the layout of `make reproduce`
            train(compose_cfg([*overrides, f"seed={seed}", "data.n_balls=3"], tmp_path=root), run_dir)
            runs.setdefault(method, []).append(run_dir)
    return root, runs


def test_p_next_by_hand_on_four_frames():
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [0.0, 5.0]])
    log_f = GaussianPrior(dim=2, scale=1.0, lengthscale=1.0)(z[:1], z)[0].detach().numpy()
    p = next_frame_probabilities(log_f)
    want = np.exp([0.0, -0.5, -4.5, -12.5])
    assert np.allclose(p, want / want.sum()) and math.isclose(p.sum(), 1.0)
    # Base frame 1: the nearest candidate (itself, then frame 0) holds most of the mass.
    p1 = next_frame_probabilities(GaussianPrior(dim=2, scale=1.0, lengthscale=1.0)(z[1:2], z)[0].detach().numpy())
    assert p1.argmax() == 1 and p1[[0, 1]].sum() > 0.8
    assert np.allclose(next_frame_probabilities(np.array([1000.0, 1000.0, -1000.0, 0.0])), [0.5, 0.5, 0, 0])


def test_every_panel_is_drawn_and_saved(tiny_runs, tmp_path):
    _, runs = tiny_runs
    for run_dir in (d for dirs in runs.values() for d in dirs):
        evaluate_run(run_dir)  # the figures read scores; `rpm figures` evaluates first, as here
    figures = build_figures(runs, base_frame=5)
    # Axes per figure: D and E carry a colour bar each.
    assert {name: len(fig.axes) for name, fig in figures.items()} == {
        "fig1a": 1, "fig1b": 2, "fig1c": 1, "fig1d": 2, "fig1e": 2, "fig1": 8}
    for name, fig in figures.items():
        png, pdf = save_figure(fig, tmp_path / name)
        width, height = Image.open(png).size
        assert width > 300 and height > 250 and pdf.stat().st_size > 1000, name
    assert Image.open(tmp_path / "fig1.png").size[0] > Image.open(tmp_path / "fig1a.png").size[0]


@pytest.mark.slow  # the CLI path; test_every_panel_is_drawn_and_saved draws the same panels in-process
def test_figures_cli_with_explicit_runs(tiny_runs, tmp_path):
    _, runs = tiny_runs
    proc = run_rpm(["figures", f"gaussian_run={runs['gaussian'][0]}", f"linear_run={runs['linear'][0]}",
                    f"supervised_run={runs['supervised'][0]}", "base_frame=5"], tmp_path, check=True)
    written = [line.split(" ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("wrote ")]
    assert len(written) == 12 and all(p.endswith((".png", ".pdf")) for p in written)
    bad = run_rpm(["figures", f"gaussian_run={runs['gaussian'][0]}"], tmp_path)  # linear_run missing
    assert bad.returncode == 2 and "linear_run must be given too" in bad.stderr
    none = run_rpm(["figures", f"reproduce_dir={tmp_path / 'nothing'}"], tmp_path)
    assert none.returncode == 2 and "make reproduce" in none.stderr


def test_figures_default_to_the_reproduce_layout(tiny_runs, tmp_path):
    root, _ = tiny_runs
    proc = run_rpm(["figures", f"reproduce_dir={root}", "base_frame=5", f"hydra.run.dir={tmp_path / 'figs'}"],
                   tmp_path, check=True)
    assert (tmp_path / "figs" / "fig1.png").stat().st_size > 10_000 and "fig1e.pdf" in proc.stdout
    # Pictures for the runs panels B, D and E show (each method's first seed), none for the other seeds.
    drawn = {(d.parent.name, d.name) for d in root.glob("tuned/*/seed-*") if (d / "maps.png").exists()}
    assert drawn == {("gaussian", "seed-0"), ("linear", "seed-0")}


def test_report_on_tiny_runs(tiny_runs, tmp_path):
    root, runs = tiny_runs
    for dirs in runs.values():
        for run_dir in dirs:
            evaluate_run(run_dir)
    proc = run_rpm(["report", str(root), "--wall-seconds", "90", "--jobs", "2"], tmp_path, check=True)
    text = (root / "REPORT.md").read_text()
    assert str(root / "REPORT.md") in proc.stdout
    for method in ("supervised", "gaussian", "linear"):
        assert f"| {method} | " in text
    for method in ("supervised", "gaussian", "linear"):  # controls from each method's own seeds
        assert f"| {method}: random-init control, same seeds |" in text and f"| {method}: chance, same seeds |" in text
    assert text.count("| tuned | ") == 6  # one row per run
    verdicts = re.findall(r"^- \*\*tuned: (Gaussian|the linear)[^*]*: (reproduced|not reproduced|reproduced in \d+ of \d+ "
                          r"seeds only[^*]*)\.\*\*", text, flags=re.M)
    assert [v[0] for v in verdicts] == ["Gaussian", "the linear"], text
    lines = [line for line in text.splitlines() if line.startswith("- **tuned: ")]
    assert len(lines) == 2 and all("**2 seeds per arm: an anecdote; no test at this n can support a comparison"
                                   in line for line in lines)
    assert "1.5 min for the whole" in text
    assert f"rpm train {STUDY_RECIPES['tuned']} prior=linear seed=<seed>" in text and "```yaml" in text  # as registered
    # Facts come from the runs' configs, not from the paper's defaults.
    assert "all 64×64 RGB with 3 balls of diameter 12 px (6 latents)" in text
    assert "Reporting seeds: 0, 1." in text and "**Overlap: [0].**" in text


def test_report_counts_the_time_of_discarded_starts(tmp_path):
    from rpm_cli.records import discarded_start_seconds

    assert discarded_start_seconds(tmp_path) == 0.0  # a run without restarts
    (tmp_path / "starts.json").write_text(json.dumps({"chosen": 1, "starts": [
        {"start": 0, "seconds": 40.0}, {"start": 1, "seconds": 41.0}, {"start": 2, "seconds": 39.5}]}))
    assert discarded_start_seconds(tmp_path) == 79.5
