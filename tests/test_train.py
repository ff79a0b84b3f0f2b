import json

import pytest
import torch

from rpm_cli.errors import UserError
from rpm_cli.evaluate import evaluate_run
from rpm_cli.records import run_record
from rpm_cli.layout import CHECKPOINT, EVALUATION, METRICS, STARTS
from rpm_cli.runs import load_checkpoint
from rpm_cli.models.model import Model
from rpm_cli.train import train
from tests.helpers import train_killed_at_epoch


def _losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / METRICS).read_text().splitlines()]


def test_infonce_loss_falls(tiny_cfg, tmp_path):
    cfg = tiny_cfg("trainer.optimizer=adam", "trainer.lr=0.02", "trainer.epochs=8")
    train(cfg, tmp_path / "run")
    losses = _losses(tmp_path / "run")
    assert len(losses) == 8 and losses[-1] < losses[0] - 0.3


@pytest.mark.parametrize("overrides", [("prior=linear",), ("objective=supervised",)])
def test_other_objectives_train(tiny_cfg, tmp_path, overrides):
    cfg = tiny_cfg("trainer.optimizer=adam", "trainer.epochs=4", *overrides)
    train(cfg, tmp_path / "run")
    losses = _losses(tmp_path / "run")
    assert losses[-1] < losses[0]


def test_same_seed_same_numbers(tiny_cfg, tmp_path):
    for name in ("a", "b"):
        train(tiny_cfg("seed=5"), tmp_path / name)
    assert (tmp_path / "a" / METRICS).read_text().split('"seconds"')[0] == \
        (tmp_path / "b" / METRICS).read_text().split('"seconds"')[0]
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")


def test_fixed_lengthscale_stays_fixed(tiny_cfg, tmp_path):
    train(tiny_cfg("prior.learn_lengthscale=false", "prior.lengthscale=20"), tmp_path / "run")
    last = json.loads((tmp_path / "run" / METRICS).read_text().splitlines()[-1])
    assert last["lengthscale_px"] == pytest.approx(20.0, rel=1e-6)


def test_checkpoint_is_self_contained_and_evaluates(tiny_cfg, tmp_path):
    run = tmp_path / "run"
    train(tiny_cfg(), run)
    state = load_checkpoint(run / CHECKPOINT)
    assert state["finished"] and state["epoch"] == 2 and state["config"]["data"]["image_size"] == 64
    with pytest.raises(UserError, match=r"no up-to-date evaluation.json: run `rpm evaluate run_dir="):
        run_record(run)  # reading never evaluates
    result = evaluate_run(run)
    record = run_record(run)
    assert record["test"] == result["test"] and record["finished"] and record["config"] == state["config"]
    assert record["train_seconds"] > 0
    for role in ("val", "test"):  # the trained encoder beats chance on both held-out videos
        assert result[role]["readout_l2_px"] < result[role]["chance"]["readout_l2_px"]
    first = (run / EVALUATION).read_text()
    evaluate_run(run, force=True)
    assert (run / EVALUATION).read_text() == first  # idempotent


def test_finished_run_dir_is_never_reused(tiny_cfg, tmp_path):
    train(tiny_cfg(), tmp_path / "run")
    with pytest.raises(UserError, match="refusing to overwrite"):
        train(tiny_cfg(), tmp_path / "run")


def test_supervised_model_has_a_head_and_no_prior(tiny_cfg):
    model = Model(tiny_cfg("objective=supervised"))
    assert model.prior is None and model.head.out_features == 4
    frames = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    assert model.loss(frames, torch.rand(4, 2, 2) * 64).ndim == 0


RESTARTS = ("trainer.optimizer=adam", "trainer.lr=0.02", "trainer.epochs=3", "trainer.restarts=3",
            "trainer.restart_epochs=1")


def test_restarts_continue_the_start_with_the_lowest_loss(tiny_cfg, tmp_path):
    run = tmp_path / "run"
    train(tiny_cfg(*RESTARTS, "seed=4"), run)
    record = json.loads((run / STARTS).read_text())
    starts = record["starts"]
    assert [s["start"] for s in starts] == [0, 1, 2] and starts[0]["seed"] == 4
    assert len({s["seed"] for s in starts}) == 3 and all(len(s["losses"]) == 1 for s in starts)
    assert len({s["losses"][0] for s in starts}) == 3  # really different starts
    chosen = min(starts, key=lambda s: s["losses"][-1])
    assert record["chosen"] == chosen["start"]
    losses = _losses(run)
    assert len(losses) == 3 and losses[0] == chosen["losses"][0]  # the chosen start's epoch, then two more
    state = load_checkpoint(run / CHECKPOINT)
    assert state["finished"] and state["epoch"] == 3 and state["starts"] == starts and record["chosen_by"]


def test_run_killed_while_choosing_a_start_resumes_exactly(tiny_cfg, tmp_path, monkeypatch):
    train(tiny_cfg(*RESTARTS), tmp_path / "clean")
    run = tmp_path / "killed"
    train_killed_at_epoch(tiny_cfg(*RESTARTS), run, 3, monkeypatch)  # in the third start
    state = load_checkpoint(run / CHECKPOINT)
    assert state["epoch"] == 0 and len(state["starts"]) == 2 and not (run / METRICS).exists()
    train(tiny_cfg(*RESTARTS, f"resume={run}"), run)
    clean, resumed = load_checkpoint(tmp_path / "clean" / CHECKPOINT), load_checkpoint(run / CHECKPOINT)
    def no_time(starts):
        return [{k: v for k, v in s.items() if k != "seconds"} for s in starts]

    assert no_time(resumed["starts"]) == no_time(clean["starts"])
    assert all(torch.equal(clean["model"][k], resumed["model"][k]) for k in clean["model"])
    assert _losses(run) == _losses(tmp_path / "clean")
