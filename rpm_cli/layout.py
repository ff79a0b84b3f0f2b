"""What a run dir holds, by name, and which keys do not change a run's numbers: facts every layer reads.

Dependency-free on purpose (no torch, no Hydra), so the command-line checks that run before Hydra starts
can use it without paying for imports.
"""
from pathlib import Path

from rpm_cli.errors import UserError

CHECKPOINT = "checkpoint.pt"  # weights, prior, optimizer and RNG states, resolved config, epoch
METRICS = "metrics.jsonl"  # one line per epoch
STARTS = "starts.json"  # with trainer.restarts > 1: every start's losses and which one was continued
EVALUATION = "evaluation.json"  # `rpm evaluate`'s scores
EVALUATION_FORMAT = 3  # bump when what evaluation.json holds changes, so old files are recomputed (3: rank ties)
LOCK = ".rpm.lock"  # held while a process trains in the dir
HYDRA_RECORD, HYDRA_RESUME_RECORD = ".hydra", ".hydra-resume"
# A run's pictures (rpm_cli/figures/run.py), by the kind of observation its data gives.
PICTURES = {"image": ("curves.png", "maps.png", "tracking.gif"), "vector": ("curves.png", "latents.png")}
# What a run that never reached a checkpoint can have written into its dir (Hydra's record and log, rpm's files).
RUN_LITTER = (HYDRA_RECORD, HYDRA_RESUME_RECORD, "train.log", LOCK, METRICS, STARTS, "tensorboard")

# metrics.jsonl keys that are bookkeeping, not learned prior parameters (val_* keys are held-out scores, also not).
METRICS_BOOKKEEPING = frozenset({"epoch", "loss", "seconds", "frames_per_s", "infonce_bound", "infonce_estimate",
                                 "batch_size", "negatives", "lr", "step", "steps"})

TRAIN_ROOT = Path("outputs/train")
LATEST = TRAIN_ROOT / "latest"  # links the newest single run

# Keys that do not change a run's numbers: never part of a sweep dir's name or a sweep plot's axis, and the
# only ones `resume=` accepts besides trainer.epochs.
RUNTIME_KEYS = ("seed", "resume", "evaluate", "sweep_metric", "debug", "max_memory_gb", "logger", "data.cache_dir",
                "trainer.progress", "trainer.threads", "trainer.device")


def pictures_current(run_dir: Path) -> bool:
    """Whether a run's pictures were all drawn after its checkpoint was last written: `rpm evaluate` then
    neither loads the run nor draws them again (force=true does both)."""
    saved = (run_dir / CHECKPOINT).stat().st_mtime_ns
    return any(all((run_dir / name).exists() and (run_dir / name).stat().st_mtime_ns >= saved for name in names)
               for names in PICTURES.values())


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
    try:
        runs = sorted(p.parent for p in sweep.rglob(CHECKPOINT))
    except OSError as exc:  # a dir that vanished while it was read (/proc), or one that cannot be read
        raise UserError(f"cannot read sweep_dir {sweep}: {exc.strerror or exc} ({exc.filename})") from None
    if not runs:
        raise UserError(f"sweep_dir {sweep} holds no trained runs (no {CHECKPOINT} below it)")
    return runs
