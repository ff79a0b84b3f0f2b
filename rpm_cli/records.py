"""A run dir read back as the record that figures and the report use: its config, its scores and its timing.

Reading never trains or evaluates: a run whose evaluation.json is missing or older than its checkpoint is
refused with the command that evaluates it. The commands (`rpm evaluate`, `rpm figures`) evaluate first.
"""
import json
from pathlib import Path

from rpm_cli.errors import UserError
from rpm_cli.layout import CHECKPOINT, EVALUATION, EVALUATION_FORMAT, STARTS
from rpm_cli.runs import load_checkpoint, read_metrics


def is_evaluated(run_dir, state: dict | None = None) -> bool:
    """True when evaluation.json holds today's format for the checkpoint's epoch."""
    path = Path(run_dir) / EVALUATION
    if not path.exists():
        return False
    state = state if state is not None else load_checkpoint(Path(run_dir) / CHECKPOINT)
    stored = json.loads(path.read_text())
    return stored.get("epoch") == state["epoch"] and stored.get("format") == EVALUATION_FORMAT


def discarded_start_seconds(run_dir: Path) -> float:
    """Training time of the starts a run tried and dropped (trainer.restarts > 1); 0 without restarts."""
    path = Path(run_dir) / STARTS
    if not path.exists():
        return 0.0
    record = json.loads(path.read_text())
    return sum(s["seconds"] for s in record["starts"] if s["start"] != record["chosen"])


def run_record(run_dir) -> dict:
    """evaluation.json of a run, with its config (upgraded), whether it finished, and its training seconds
    (the starts it dropped included)."""
    run_dir = Path(run_dir)
    state = load_checkpoint(run_dir / CHECKPOINT)
    if not is_evaluated(run_dir, state):
        raise UserError(f"run {run_dir} has no up-to-date {EVALUATION}: run `rpm evaluate run_dir={run_dir}`")
    record = json.loads((run_dir / EVALUATION).read_text())
    record.update(config=state["config"], finished=state["finished"],
                  train_seconds=sum(m["seconds"] for m in read_metrics(run_dir)) + discarded_start_seconds(run_dir))
    return record
