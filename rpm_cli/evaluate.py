"""`rpm evaluate`: encode the training and held-out videos, fit the linear readout on the first, score on
the second, with two controls (chance, and a random-init encoder of the same seed)."""
import json
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from rpm_cli.atomic import write_json
from rpm_cli.data.balls import Video, load_video
from rpm_cli.errors import UserError
from rpm_cli.models.build import build_encoder
from rpm_cli.readout import chance_metrics, readout_metrics
from rpm_cli.runs import CHECKPOINT, EVALUATION, load_checkpoint, resolve_run_dir, runs_in_sweep


@torch.no_grad()
def encode(encoder: torch.nn.Module, frames: np.ndarray, batch_size: int = 100) -> np.ndarray:
    encoder.eval()
    out = [encoder(torch.from_numpy(frames[i:i + batch_size])) for i in range(0, len(frames), batch_size)]
    return torch.cat(out).double().numpy()


@torch.no_grad()
def calibrate_batchnorm(encoder: torch.nn.Module, frames: np.ndarray, batch_size: int = 100) -> None:
    """Give an untrained encoder's BatchNorm layers the training video's statistics (a fair control)."""
    for module in encoder.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the batches below
    encoder.train()
    for i in range(0, len(frames), batch_size):
        encoder(torch.from_numpy(frames[i:i + batch_size]))


def scores(encoder, train: Video, test: Video, image_size: int, batch_size: int) -> dict:
    z_train = encode(encoder, train.frames, batch_size) * image_size
    z_test = encode(encoder, test.frames, batch_size) * image_size
    return readout_metrics(z_train, train.centres, z_test, test.centres)


def evaluate_run(run_dir, batch_size: int = 100, force: bool = False) -> dict:
    """Evaluate one run; writes and returns evaluation.json. Re-running gives the same file."""
    run_dir = Path(run_dir)
    state = load_checkpoint(run_dir / CHECKPOINT)
    if not state["finished"]:
        raise UserError(f"run {run_dir} stopped at epoch {state['epoch']}: finish it with `rpm train resume={run_dir}`")
    out = run_dir / EVALUATION
    if out.exists() and not force:
        previous = json.loads(out.read_text())
        if previous.get("epoch") == state["epoch"]:
            return previous
    cfg = OmegaConf.create(state["config"])
    data = cfg.data
    train = load_video(data, seed=data.seed, n_frames=data.n_frames)
    test = load_video(data, seed=data.test_seed, n_frames=data.test_frames)
    encoder = build_encoder(cfg)
    encoder.load_state_dict({k.removeprefix("encoder."): v for k, v in state["model"].items()
                             if k.startswith("encoder.")})
    result = {"run_dir": str(run_dir), "epoch": state["epoch"], "n_train_frames": train.n_frames,
              "n_test_frames": test.n_frames, **scores(encoder, train, test, data.image_size, batch_size)}
    torch.manual_seed(cfg.seed)  # the same initial weights the run started from
    random_encoder = build_encoder(cfg)
    calibrate_batchnorm(random_encoder, train.frames, batch_size)
    result["random_init"] = scores(random_encoder, train, test, data.image_size, batch_size)
    result["chance"] = chance_metrics(train.centres, test.centres)
    result["final_train"] = state["metrics"]
    write_json(out, result)
    return result


def format_table(result: dict) -> str:
    rows = [("trained", result), ("random-init", result["random_init"]), ("chance", result["chance"])]
    lines = [f"{'':<12} {'readout L2 (px)':>16} {'slot L2 (px)':>13}"]
    lines += [f"{name:<12} {r['readout_l2_px']:>16.2f} {r['slot_l2_px']:>13.2f}" for name, r in rows]
    return "\n".join(lines)


def evaluate(cfg: DictConfig) -> list[dict]:
    """Evaluate `run_dir` (default: the latest run), or every run below `sweep_dir`."""
    if cfg.sweep_dir:
        run_dirs = runs_in_sweep(cfg.sweep_dir)
    else:
        run_dirs = [resolve_run_dir(cfg.run_dir)]
    if not isinstance(cfg.batch_size, int) or cfg.batch_size < 1:
        raise UserError(f"batch_size must be an integer >= 1 (got {cfg.batch_size!r})")
    results = []
    for run_dir in run_dirs:
        result = evaluate_run(run_dir, cfg.batch_size, force=cfg.force)
        print(f"{run_dir}\n{format_table(result)}")
        results.append(result)
    return results
