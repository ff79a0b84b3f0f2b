"""`rpm train`: InfoNCE with a Gaussian or linear f_θ, or the supervised baseline, on the balls video.

`train(cfg, run_dir)` is the plain function (tests call it); the Hydra app around it is in apps.py.
"""
import json
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from rpm_cli.atomic import append_line, write_text
from rpm_cli.config import validate_train
from rpm_cli.data.balls import load_video
from rpm_cli.errors import TrainingDiverged, UserError
from rpm_cli.models.build import build_critic, build_encoder, pick_device
from rpm_cli.objectives import info_nce, info_nce_bound
from rpm_cli.runs import CHECKPOINT, METRICS, load_checkpoint, save_checkpoint


def seed_everything(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(params, trainer_cfg) -> torch.optim.Optimizer:
    if trainer_cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=trainer_cfg.lr)
    return torch.optim.SGD(params, lr=trainer_cfg.lr, momentum=trainer_cfg.momentum)


class Model(torch.nn.Module):
    """Encoder plus what sits on top of it: the f_θ critic (InfoNCE) or a linear head (supervised)."""

    def __init__(self, cfg: DictConfig):
        super().__init__()
        self.encoder = build_encoder(cfg)
        self.supervised = cfg.trainer.objective == "supervised"
        dim = self.encoder.latent_dim
        self.head = torch.nn.Linear(dim, 2 * cfg.data.n_balls) if self.supervised else None
        self.critic = None if self.supervised else build_critic(cfg, dim)
        self.reduction = cfg.trainer.loss_reduction
        self.image_size = cfg.data.image_size

    def loss(self, frames: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """frames (2B, 3, H, W) uint8: B base frames then their B next frames; centres (2B, n_balls, 2) px."""
        z = self.encoder(frames)
        if self.supervised:
            target = centres.reshape(len(centres), -1) / self.image_size
            return torch.nn.functional.mse_loss(self.head(z), target, reduction=self.reduction)
        base, nxt = z.chunk(2)
        return info_nce(self.critic(base, nxt), reduction=self.reduction)

    def summary(self) -> dict:
        return self.critic.summary(self.image_size) if self.critic is not None else {}


def all_finite(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def _start_or_resume(cfg: DictConfig, run_dir: Path):
    """(cfg, model, optimizer, sampler, first_epoch) for a fresh run, or restored from `resume`."""
    state = None
    if cfg.resume:
        state = load_checkpoint(Path(cfg.resume) / CHECKPOINT)
        if state["finished"]:
            raise UserError(f"resume={cfg.resume} is already finished ({state['epoch']} epochs); nothing to resume")
        cfg = OmegaConf.create(state["config"])
    elif (run_dir / CHECKPOINT).exists():
        raise UserError(f"run dir {run_dir} already holds a run; refusing to overwrite it (use resume=)")
    seed_everything(cfg.seed)
    device = pick_device(cfg.trainer.device)
    model = Model(cfg).to(device)
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], cfg.trainer)
    sampler = torch.Generator().manual_seed(cfg.seed)
    first_epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.set_state(state["sampler_rng"])
        torch.set_rng_state(state["torch_rng"])
        first_epoch = state["epoch"]
        _drop_metrics_after(run_dir / METRICS, first_epoch)
    return cfg, model, optimizer, sampler, first_epoch


def _kept(run_dir: Path, epochs_done: int) -> str:
    if epochs_done and (run_dir / CHECKPOINT).exists():
        return f"the last good checkpoint (epoch {epochs_done}) is kept in {run_dir}"
    return "no epoch had finished, so no checkpoint was written"


def _drop_metrics_after(path: Path, epoch: int) -> None:
    """A run killed between writing an epoch's metrics and its checkpoint: forget the orphaned lines."""
    if path.exists():
        lines = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["epoch"] <= epoch]
        write_text(path, "".join(ln + "\n" for ln in lines))


def train(cfg: DictConfig, run_dir) -> dict:
    """Train to the end (or resume), writing checkpoint.pt and metrics.jsonl into run_dir.

    Returns the final epoch's metrics.
    """
    run_dir = Path(run_dir)
    validate_train(cfg)
    cfg, model, optimizer, sampler, first_epoch = _start_or_resume(cfg, run_dir)
    t_cfg = cfg.trainer
    if t_cfg.threads:
        torch.set_num_threads(t_cfg.threads)
    device = next(model.parameters()).device
    video = load_video(cfg.data, seed=cfg.data.seed, n_frames=cfg.data.n_frames)
    frames = torch.from_numpy(video.frames).to(device)
    centres = torch.from_numpy(video.centres).to(device)
    n_pairs, batch = video.n_frames - 1, t_cfg.batch_size
    steps_per_epoch = n_pairs // batch  # full batches only: every step contrasts B pairs
    resolved = OmegaConf.to_container(cfg, resolve=True)
    metrics = {}
    bar = tqdm(total=t_cfg.epochs * steps_per_epoch, initial=first_epoch * steps_per_epoch,
               disable=not t_cfg.progress, desc=f"train {cfg.prior.name if not model.supervised else 'supervised'}",
               unit="step", dynamic_ncols=True)
    for epoch in range(first_epoch, t_cfg.epochs):
        model.train()
        started, losses = time.perf_counter(), []
        order = torch.randperm(n_pairs, generator=sampler)
        for step in range(steps_per_epoch):
            base = order[step * batch:(step + 1) * batch].to(device)
            index = torch.cat([base, base + 1])
            loss = model.loss(frames[index], centres[index])
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}; "
                                       + _kept(run_dir, epoch))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if not all_finite(model):
                raise TrainingDiverged(f"a parameter became non-finite at epoch {epoch + 1}, step {step + 1}; "
                                       + _kept(run_dir, epoch))
            losses.append(loss.item())
            bar.update()
            bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.4f}", **{
                k: f"{v:.3g}" for k, v in model.summary().items()})
        seconds = time.perf_counter() - started
        mean_loss = float(np.mean(losses))
        metrics = {"epoch": epoch + 1, "loss": mean_loss, "seconds": seconds,
                   "frames_per_s": 2 * batch * steps_per_epoch / seconds, **model.summary()}
        if not model.supervised:
            per_pair = mean_loss / batch if t_cfg.loss_reduction == "sum" else mean_loss
            metrics["infonce_bound"] = info_nce_bound(per_pair, batch)
        append_line(run_dir / METRICS, json.dumps(metrics))
        save_checkpoint(run_dir, {
            "config": resolved, "epoch": epoch + 1, "finished": epoch + 1 == t_cfg.epochs,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "sampler_rng": sampler.get_state(), "torch_rng": torch.get_rng_state(), "metrics": metrics})
    bar.close()
    return metrics
