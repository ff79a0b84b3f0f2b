"""Run-directory layout, atomic checkpoint save and safe load, finding runs, and `load_run`: the one place
a finished run is read back (evaluate, figures and report all use it).

A run dir is Hydra's output dir for one `rpm train` job: `.hydra/` (Hydra's record), `checkpoint.pt`
(self-contained: weights, prior, optimizer, RNG states, resolved config, epoch), `metrics.jsonl` (one
line per epoch), `starts.json` (with trainer.restarts > 1), `evaluation.json` (after `rpm evaluate`) and the
pictures `rpm evaluate` draws. `outputs/train/latest` links the newest single run.
"""
import contextlib
import copy
import fcntl
import json
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from rpm_cli.atomic import atomic_path
from rpm_cli.data.base import Dataset, Split
from rpm_cli.data.build import build_dataset
from rpm_cli.errors import RunDirBusy, UserError
from rpm_cli.layout import CHECKPOINT, LOCK, METRICS, STARTS, resolve_run_dir
from rpm_cli.models.inference import encode
from rpm_cli.models.model import Model

# Keys that runs written before them did not have, with the values those runs used (what they behaved as);
# the data and encoder ones are keys of the balls and com_cnn.
ADDED_KEYS = {
    "data": {"val_seed": 2000, "val_frames": 300, "background": "black", "antialias": True},
    "encoder": {"map_bias_init": 0.0, "skip_background": True, "latent_units": "image", "kernels": "torch"},
    "trainer": {"restarts": 1, "restart_epochs": 2, "batchnorm_batch": "joint", "reseed_below": 0.0,
                "keep_from": 0},
    "logger": {"name": "jsonl"},
}
CHECKPOINT_FORMAT = "rpm-checkpoint-v1"
BALLS_TARGET = "rpm_cli.data.balls_dataset.BallsDataset"
COM_CNN_TARGET = "rpm_cli.models.encoder.CentreOfMassEncoder"
OLDER_TARGETS = (BALLS_TARGET, COM_CNN_TARGET)  # the plug-ins whose keys ADDED_KEYS names
# Objectives before they were plug-ins: a name only.
OBJECTIVE_TARGETS = {"infonce": "rpm_cli.models.objectives.InfoNCE",
                     "supervised": "rpm_cli.models.objectives.Supervised"}


@contextlib.contextmanager
def run_lock(run_dir):
    """Hold the run dir for one `rpm train` at a time: a second process (a second resume of the same dir)
    is refused at once instead of interleaving checkpoints. The OS drops the lock when a process dies."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"cannot create or write the run dir {run_dir}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunDirBusy(f"run dir {run_dir} is in use by another rpm train (it holds {LOCK}); wait for it to end") from None
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


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
    return upgrade_state(state)


def upgrade_state(state: dict) -> dict:
    """A checkpoint in today's layout, the one place old runs are read as new ones: its config through
    upgrade_config, and the weights of runs saved before f_θ had one name (the model's `critic`) as `prior`."""
    if "config" in state:
        state["config"] = upgrade_config(state["config"])
    if "model" in state:
        state["model"] = {("prior." + k[len("critic."):] if k.startswith("critic.") else k): v
                          for k, v in state["model"].items()}
    return state


def upgrade_config(config: dict) -> dict:
    """A checkpoint's resolved config in today's layout; configs written today pass through unchanged.

    Older runs kept the objective in `trainer.objective`, a prior beside the supervised head, a name that
    nothing read (`trainer.name`), and no `_target_` for their dataset, encoder and objective; keys added since
    get the values those runs behaved as.
    """
    config = copy.deepcopy(config)
    trainer, data = config["trainer"], config["data"]
    config.pop("resume", None)  # how an invocation began, not part of a run's config
    if "objective" not in config:
        config["objective"] = {"name": trainer.get("objective", "infonce")}
    trainer.pop("objective", None)
    trainer.pop("name", None)
    if config["objective"]["name"] == "supervised":
        config["prior"] = None
    if "_target_" not in config["objective"]:
        config["objective"] = {"_target_": OBJECTIVE_TARGETS[config["objective"]["name"]], **config["objective"]}
    if "_target_" not in data:  # written before datasets and encoders were plug-ins: the balls and com_cnn
        data.update(_target_=BALLS_TARGET, name="balls", prior_lengthscale=data["ball_diameter"])
        config["encoder"].setdefault("_target_", COM_CNN_TARGET)
    for section, added in ADDED_KEYS.items():
        if config.get(section, {}).get("_target_") in (None, *OLDER_TARGETS):  # keys of the older plug-ins only
            for key, value in added.items():
                config.setdefault(section, {}).setdefault(key, value)
    config.setdefault("max_memory_gb", None)
    return config


def chosen_seed(state: dict, seed: int) -> int:
    """The seed of the start a run continued: its own seed, unless restarts chose another start."""
    for start in state.get("starts", []):
        if start["start"] == state.get("best_start"):
            return start["seed"]
    return seed


@dataclass
class Run:
    """A run read back from its dir: config, dataset, model (eval mode), metrics, starts, and its splits and
    latents (lazily)."""

    run_dir: Path
    cfg: DictConfig
    dataset: Dataset
    state: dict
    model: torch.nn.Module
    metrics: list[dict]
    starts: dict | None
    _latents: dict = field(default_factory=dict, repr=False)

    @property
    def encoder(self):
        return self.model.encoder

    @property
    def prior(self):
        return self.model.prior

    @property
    def init_seed(self) -> int:
        state = self.state
        if "best_start" not in state and self.starts:  # checkpoints from before it was recorded
            state = {**state, "best_start": self.starts["chosen"]}
        return chosen_seed(state, self.cfg.seed)

    def split(self, role: str) -> Split:
        """The run's 'train', 'val' or 'test' split (cached on disk and by the dataset)."""
        return self.dataset.split(role)

    def video(self, role: str):
        """The balls' 'train', 'val' or 'test' video (the pictures of image datasets read frames and centres)."""
        return self.dataset.video(role)

    def latents(self, role: str) -> np.ndarray:
        """z of every observation of a split, eval mode, in the dataset's length unit (pixels for the balls)."""
        if role not in self._latents:
            self._latents[role] = encode(self.encoder, self.split(role).observations) * self.dataset.length_unit
        return self._latents[role]


def read_metrics(run_dir) -> list[dict]:
    path = Path(run_dir) / METRICS
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def load_run(run_dir, finished: bool = True) -> Run:
    """Everything a consumer of a run needs; `finished` refuses a run that stopped early."""
    run_dir = resolve_run_dir(run_dir)
    state = load_checkpoint(run_dir / CHECKPOINT)
    if finished and not state["finished"]:
        raise UserError(f"run {run_dir} stopped at epoch {state['epoch']}: finish it with `rpm train resume={run_dir}`")
    cfg = OmegaConf.create(state["config"])
    dataset = build_dataset(cfg.data)
    model = Model(cfg, dataset)
    model.load_state_dict(state["model"])
    model.eval()
    starts_path = run_dir / STARTS
    starts = json.loads(starts_path.read_text()) if starts_path.exists() else None
    return Run(run_dir, cfg, dataset, state, model, read_metrics(run_dir), starts)
