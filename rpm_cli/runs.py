"""Run-directory layout, atomic checkpoint save and safe load, and finding runs.

A run dir is Hydra's output dir for one `rpm train` job: `.hydra/` (Hydra's record), `checkpoint.pt`
(self-contained: weights, critic, optimizer, RNG states, resolved config, epoch), `metrics.jsonl` (one
line per epoch), `starts.json` (with trainer.restarts > 1), `evaluation.json` (after `rpm evaluate`).
`outputs/train/latest` links the newest single run.
"""
import pickle
import zipfile
from pathlib import Path

import torch

from rpm_cli.atomic import atomic_path
from rpm_cli.errors import UserError

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
EVALUATION = "evaluation.json"
STARTS = "starts.json"  # with trainer.restarts > 1: every start's losses and which one was continued
CHECKPOINT_FORMAT = "rpm-checkpoint-v1"
TRAIN_ROOT = Path("outputs/train")
LATEST = TRAIN_ROOT / "latest"


def save_checkpoint(run_dir, state: dict) -> None:
    with atomic_path(Path(run_dir) / CHECKPOINT) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)


def load_checkpoint(path) -> dict:
    """Load with weights_only=True (no pickled code runs); any unreadable or foreign file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no checkpoint at {path} (train the run first, or pass run_dir=<a finished run>)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"checkpoint {path} is truncated, corrupt or not an rpm checkpoint ({reason[:200]})") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"checkpoint {path} is not an rpm checkpoint (format {CHECKPOINT_FORMAT} expected)")
    return state


def resolve_run_dir(run_dir) -> Path:
    """`run_dir` as given, or the latest single train run; must exist and hold a checkpoint."""
    if run_dir in (None, "", "latest"):
        if not LATEST.exists():
            raise UserError(f"run_dir not given and no latest run at {LATEST}: run `rpm train` first")
        path = LATEST.resolve()
    else:
        path = Path(run_dir)
    if not path.is_dir():
        raise UserError(f"run_dir {path} does not exist or is not a directory")
    if not (path / CHECKPOINT).is_file():
        raise UserError(f"run_dir {path} has no {CHECKPOINT}: was the run trained?")
    return path


def runs_in_sweep(sweep_dir) -> list[Path]:
    """Run dirs (those holding a checkpoint) below a multirun dir, in a stable order."""
    sweep = Path(sweep_dir)
    if not sweep.is_dir():
        raise UserError(f"sweep_dir {sweep} does not exist or is not a directory")
    runs = sorted(p.parent for p in sweep.rglob(CHECKPOINT))
    if not runs:
        raise UserError(f"sweep_dir {sweep} holds no trained runs (no {CHECKPOINT} below it)")
    return runs
