"""`logger=tensorboard` writes event files whose scalars read back equal metrics.jsonl's values."""
import json

import pytest

from rpm_cli.errors import UserError
from rpm_cli.loggers import check_available
from rpm_cli.train import train


def test_tensorboard_scalars_equal_the_jsonl_metrics(tiny_cfg, tmp_path):
    pytest.importorskip("tensorboard", reason="optional extra: pip install -e .[tensorboard]")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    train(tiny_cfg("logger=tensorboard", "trainer.epochs=3"), run)
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0}).Reload()
    for key in ("loss", "lengthscale_px", "infonce_estimate", "frames_per_s"):
        logged = [(e.step, e.value) for e in events.Scalars(f"epoch/{key}")]
        assert logged == [(m["epoch"], pytest.approx(m[key], rel=1e-6)) for m in metrics], key
    steps = events.Scalars("step/loss")
    assert len(steps) == 3 * (59 // 10) and [e.step for e in steps] == list(range(1, len(steps) + 1))
    assert len(events.Images("maps")) == 3
    assert "config" in " ".join(events.Tags()["tensors"])


def test_a_missing_extra_is_one_line(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard":
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(UserError, match=r"^logger=tensorboard needs the optional extra: pip install -e \.\[tensorboard\]$"):
        check_available("tensorboard")
    check_available("jsonl")  # needs nothing
