"""data=clica: the generator obeys its definition (box, truncated conditional of the stated scale, one
invertible g per world), the scores match hand computations, and the commands run it end to end."""
import json

import numpy as np
import pytest

from rpm_cli.data.clica import (LEAKY_SLOPE, ClicaDataset, conditional, linear_r2, matched_correlations, mcc,
                                mixing_weights, r2_score)
from tests.helpers import compose_cfg, run_rpm, run_rpm_here

WORLD = dict(latent_dim=4, conditional="laplace", scale=0.05, mixing_layers=3, n_pairs=3000, val_pairs=500,
             test_pairs=500, seed=10, val_seed=2000, test_seed=1000, cache_dir=None, prior_lengthscale=0.05)
TINY_CLICA = ["data=clica", "data.latent_dim=3", "data.n_pairs=600", "data.val_pairs=200", "data.test_pairs=200",
              "trainer.epochs=2", "trainer.batch_size=64", "trainer.progress=false"]


def unmix(x: np.ndarray, weights) -> np.ndarray:
    """g⁻¹ by hand: undo each layer, last first (LeakyReLU is inverted by dividing its negative part)."""
    z = x.astype(np.float64)
    for i, w in reversed(list(enumerate(weights))):
        if i < len(weights) - 1:
            z = np.where(z > 0, z, z / LEAKY_SLOPE)
        z = np.linalg.solve(w, z.T).T
    return z


@pytest.mark.parametrize("kind", ["laplace", "normal"])
def test_pairs_lie_in_the_box_with_the_conditional_of_the_stated_scale(kind):
    world = ClicaDataset(**{**WORLD, "conditional": kind, "n_pairs": 20000})
    split = world.split("train")
    z, z_next = split.latents[split.first], split.latents[split.second]
    assert z.min() >= 0 and z.max() <= 1 and z_next.min() >= 0 and z_next.max() <= 1
    inner = (z > 0.3) & (z < 0.7)  # far from the walls, truncation removes almost nothing (6 scales away)
    steps = (z_next - z)[inner]
    # Laplace(b): mean |step| = b; Normal(σ): sd = σ.
    measured = np.abs(steps).mean() if kind == "laplace" else steps.std()
    assert measured == pytest.approx(0.05, rel=0.03)
    assert abs(steps.mean()) < 0.002


def test_truncation_redraws_only_what_falls_outside():
    z = np.full((1000, 2), 0.01)
    out = conditional(z, "normal", 0.05, np.random.default_rng(0))
    assert out.min() >= 0 and out.max() <= 1
    assert out.mean() > 0.01  # near the wall the truncated conditional leans inwards


def test_one_invertible_mixing_per_world_shared_by_its_splits():
    world = ClicaDataset(**WORLD)
    weights = mixing_weights(WORLD["latent_dim"], WORLD["mixing_layers"], WORLD["seed"])
    for role in ("train", "val", "test"):
        split = world.split(role)
        assert np.abs(unmix(split.observations, weights) - split.latents).max() < 1e-4
    assert not np.allclose(world.split("val").latents[:10], world.split("test").latents[:10])
    other = mixing_weights(WORLD["latent_dim"], WORLD["mixing_layers"], WORLD["seed"] + 1)
    assert not np.allclose(weights[0], other[0])  # another seed, another world
    again = ClicaDataset(**WORLD).split("train")
    assert np.array_equal(again.observations, world.split("train").observations)
    assert max(np.linalg.cond(w) for w in weights) < 20


def test_scores_by_hand():
    rng = np.random.default_rng(0)
    truth = rng.uniform(size=(500, 3))
    permuted = -3.0 * truth[:, [2, 0, 1]] + 1.0  # a permutation with a sign flip and a scale: fully recovered
    assert mcc(permuted, truth) == pytest.approx(1.0)
    assert linear_r2(permuted, truth, permuted, truth) == pytest.approx(1.0)
    assert r2_score(np.broadcast_to(truth.mean(0), truth.shape), truth) == pytest.approx(0.0, abs=1e-12)
    rotated = truth @ np.array([[np.cos(0.6), -np.sin(0.6), 0], [np.sin(0.6), np.cos(0.6), 0], [0, 0, 1]])
    assert linear_r2(rotated, truth, rotated, truth) == pytest.approx(1.0)  # R² forgives a rotation
    corr = matched_correlations(rotated, truth)  # MCC does not: the rotated pair correlates at cos(0.6)
    assert corr[2] == pytest.approx(1.0) and corr[0] == pytest.approx(np.cos(0.6), abs=0.05)


def test_train_and_evaluate_from_the_command_line(tmp_path):
    run_dir = tmp_path / "run"
    run_rpm(["train", *TINY_CLICA, "prior=laplace", "seed=10", f"hydra.run.dir={run_dir}"], tmp_path, check=True)
    out = run_rpm(["evaluate", f"run_dir={run_dir}"], tmp_path, check=True).stdout
    assert "linear R²" in out and "MCC" in out and "random-init" in out and "chance" in out
    result = json.loads((run_dir / "evaluation.json").read_text())
    for role in ("val", "test"):
        r = result[role]
        assert -1 < r["chance"]["r2"] < 0.05 and 0 <= r["chance"]["mcc"] < 0.2
        assert 0 <= r["mcc"] <= 1 and len(r["matched_correlations"]) == 3
    assert (run_dir / "latents.png").stat().st_size > 5000 and (run_dir / "curves.png").exists()


@pytest.mark.parametrize("args, words", [
    (["data.conditional=cauchy"], "data.conditional must be one of: laplace, normal (got 'cauchy')"),
    (["encoder=com_cnn"], "encoder=com_cnn reads images, but data=clica gives vectors"),
    (["+data.n_frames=5"], "unknown key data.n_frames: ClicaDataset does not read it"),
    (["sweep_metric=slot_l2_px"], "sweep_metric must be auto, loss or a score data=clica reports: r2, mcc"),
    (["trainer.batch_size=601"], "trainer.batch_size must be an integer from 2 to the number of training pairs, data.n_pairs (600)"),
])
def test_bad_clica_configs_exit_2_with_one_line(tmp_path, args, words, monkeypatch, capsys):
    code, stderr = run_rpm_here(["train", *TINY_CLICA, *args, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path,
                                monkeypatch, capsys)
    assert code == 2, stderr
    assert words in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # multi-process sweep; test_train_and_evaluate_from_the_command_line covers the default path
def test_a_sweep_with_restarts_summarises_and_a_run_resumes(tmp_path):
    sweep = tmp_path / "sweep"
    run_rpm(["train", "-m", *TINY_CLICA, "prior=laplace,gaussian", "seed=10", "trainer.restarts=2",
             "trainer.restart_epochs=1", "evaluate=true", f"hydra.sweep.dir={sweep}"], tmp_path, check=True)
    out = run_rpm(["figures", f"sweep_dir={sweep}"], tmp_path, check=True).stdout
    assert "r2" in out and "mcc" in out and "sweep_maps" not in out  # maps are for image data
    rows = (sweep / "sweep_summary.csv").read_text().splitlines()
    assert len(rows) == 3 and "test_mcc" in rows[0] and (sweep / "sweep_summary.png").exists()
    run_dir = next(p.parent for p in sweep.rglob("starts.json"))
    run_rpm(["train", f"resume={run_dir}", "trainer.epochs=3"], tmp_path, check=True)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_tensorboard_logs_scalars_and_no_maps_for_vectors(tmp_path):
    pytest.importorskip("tensorboard", reason="optional extra: pip install -e .[tensorboard]")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rpm_cli.train import train

    run = tmp_path / "run"
    train(compose_cfg(["prior=laplace", "logger=tensorboard"], tmp_path=tmp_path, base=TINY_CLICA), run)
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0}).Reload()
    assert len(events.Scalars("epoch/loss")) == 2 and len(events.Scalars("step/loss")) == 2 * (600 // 64)
    assert events.Tags()["images"] == []
