"""`rpm train`: an objective (InfoNCE or the RPM's ELBO under a prior f_θ, or the supervised baseline) on a
dataset's training pairs.

`train(cfg, run_dir)` is the plain function (tests call it); the Hydra app around it is in apps.py.
"""
import functools
import json
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from rpm_cli.atomic import append_line, write_json, write_text
from rpm_cli.config import validate_train
from rpm_cli.data.build import build_dataset
from rpm_cli.errors import TrainingDiverged
from rpm_cli.loggers import build_logger
from rpm_cli.map_health import health_frames, reseed_epochs, reseed_unhealthy
from rpm_cli.models.build import batch_source, build_encoder, pick_device
from rpm_cli.models.model import Model
from rpm_cli.resume import state_to_continue
from rpm_cli.layout import CHECKPOINT, METRICS, STARTS
from rpm_cli.runs import read_metrics, run_lock, save_checkpoint


def seed_everything(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(params, trainer_cfg) -> torch.optim.Optimizer:
    if trainer_cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=trainer_cfg.lr)
    return torch.optim.SGD(params, lr=trainer_cfg.lr, momentum=trainer_cfg.momentum)


def all_finite(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def total_epochs(trainer_cfg) -> int:
    """Every epoch a run trains: the discarded starts' restart_epochs each, then the chosen start's epochs."""
    return (trainer_cfg.restarts - 1) * trainer_cfg.restart_epochs + trainer_cfg.epochs


def start_seed(seed: int, start: int) -> int:
    """Seed of the start-th independent start. Start 0 is the run's own seed, so restarts=1 changes nothing."""
    if start == 0:
        return seed
    return int(np.random.SeedSequence([seed % 2**64, start]).generate_state(1)[0])


def _fresh(cfg: DictConfig, seed: int, device, dataset) -> tuple:
    """(model, optimizer, sampler) initialised from `seed`."""
    seed_everything(seed)
    model = Model(cfg, dataset).to(device)
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], cfg.trainer)
    return model, optimizer, torch.Generator().manual_seed(seed)


def _training_state(model, optimizer, sampler) -> dict:
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "sampler_rng": sampler.get_state(), "torch_rng": torch.get_rng_state()}


def _restore(state: dict, model, optimizer, sampler) -> None:
    # A run that ended on a kept epoch (trainer.keep_from) goes on from the epoch it trained last.
    model.load_state_dict(state.get("last_model", state["model"]))
    optimizer.load_state_dict(state["optimizer"])
    sampler.set_state(state["sampler_rng"])
    torch.set_rng_state(state["torch_rng"])


def _kept(run_dir: Path, epochs_done: int) -> str:
    if not (run_dir / CHECKPOINT).exists():
        return "no epoch had finished, so no checkpoint was written"
    if epochs_done:
        return f"the last good checkpoint (epoch {epochs_done}) is kept in {run_dir}"
    return f"the starts finished so far are kept in {run_dir}"


def _drop_metrics_after(path: Path, epoch: int) -> None:
    """A run killed between writing an epoch's metrics and its checkpoint: forget the orphaned lines."""
    if path.exists():
        lines = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["epoch"] <= epoch]
        write_text(path, "".join(ln + "\n" for ln in lines))


def _add_to_metrics_line(run_dir: Path, epoch: int, values: dict) -> None:
    """Add values to the metrics line of (1-based) epoch `epoch`."""
    lines = read_metrics(run_dir)
    write_text(run_dir / METRICS, "".join(json.dumps({**m, **values} if m["epoch"] == epoch else m) + "\n"
                                         for m in lines))


class Trainer:
    """The epoch loop over the training split, shared by every start of a run."""

    def __init__(self, cfg: DictConfig, run_dir: Path, device):
        self.cfg, self.run_dir, self.device = cfg, run_dir, device
        self.dataset = build_dataset(cfg.data)
        split = self.dataset.split("train")
        self.observations = torch.from_numpy(split.observations).to(device)
        self.latents = torch.from_numpy(split.latents).to(device)
        self.first, self.second = (torch.from_numpy(i).to(device) for i in (split.first, split.second))
        # What the encoder reads for some observations (crops found once per video for com_cnn's fast pass).
        self.batch = batch_source(build_encoder(cfg.encoder, self.dataset), self.observations)
        self.n_pairs = split.n_pairs
        self.steps_per_epoch = self.n_pairs // cfg.trainer.batch_size  # full batches: every step contrasts B pairs

    def epoch(self, model, optimizer, sampler, epoch: int, bar, epochs_kept: int, logger=None) -> dict:
        """Train one epoch; returns its metrics. `epochs_kept` says what a divergence would leave behind."""
        batch = self.cfg.trainer.batch_size
        model.train()
        started, losses, terms = time.perf_counter(), [], []
        order = torch.randperm(self.n_pairs, generator=sampler)
        for step in range(self.steps_per_epoch):
            pairs = order[step * batch:(step + 1) * batch].to(self.device)
            index = torch.cat([self.first[pairs], self.second[pairs]])
            loss, batch_terms = model.loss_terms(self.batch(index), self.latents[index])
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}; "
                                       + _kept(self.run_dir, epochs_kept))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if not all_finite(model):
                raise TrainingDiverged(f"a parameter became non-finite at epoch {epoch + 1}, step {step + 1}; "
                                       + _kept(self.run_dir, epochs_kept))
            losses.append(loss.item())
            terms.append({k: float(v) for k, v in batch_terms.items()})
            if logger is not None:
                logger.log_step(epoch * self.steps_per_epoch + step + 1, {"loss": losses[-1], **model.summary()})
            bar.update()
            bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.4f}", **{
                k: f"{v:.3g}" for k, v in model.summary().items()})
        seconds = time.perf_counter() - started
        mean_loss = float(np.mean(losses))
        mean_terms = {k: float(np.mean([t[k] for t in terms])) for k in (terms[0] if terms else {})}
        return {"epoch": epoch + 1, "loss": mean_loss, "seconds": seconds,
                "frames_per_s": 2 * batch * self.steps_per_epoch / seconds, **model.summary(),
                **model.objective.epoch_metrics(mean_loss, mean_terms, batch)}

    @functools.cached_property
    def health_frames(self) -> torch.Tensor:
        """The training frames map health is measured on; gathered on the first check, so runs with checks
        off never copy them."""
        return self.observations[health_frames(len(self.observations)).to(self.device)]

    def check_maps(self, model, optimizer, epoch: int) -> list[int]:
        """Before 0-based `epoch`: measure the maps as the previous epoch left them, add that to its metrics
        line, and re-seed those below trainer.reseed_below; returns the re-seeded maps. Computed from the
        model and the run's seed alone, so a run resumed from the previous epoch's checkpoint decides the same."""
        concentration = model.encoder.map_concentration(self.health_frames)
        if concentration is None:
            return []
        health = [round(float(c), 4) for c in concentration]
        _add_to_metrics_line(self.run_dir, epoch, {"map_concentration": health})
        return reseed_unhealthy(model, optimizer, health, self.cfg.trainer.reseed_below, self.health_frames,
                                self.cfg.seed, epoch)

    def leak_candidate(self, model, epoch: int) -> dict | None:
        """After (1-based) `epoch`: the maps' largest leak onto another map's ball, with the state it was read
        from, as a candidate for the epoch the run ends on (trainer.keep_from); None for maps-free encoders."""
        leak = model.encoder.map_leak(self.health_frames)
        if leak is None:
            return None
        return {"epoch": epoch, "leak": float(leak.max()),
                "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}


def _select_start(trainer: Trainer, resolved: dict, state: dict | None, bar) -> dict:
    """Train `restarts` independent starts for `restart_epochs` each and return the one with the lowest
    training loss in its last epoch (no labels are used), as a checkpoint state to continue from.

    A collapsed start, where one map never finds a ball, shows as a higher loss by then. After each start
    the checkpoint (epoch 0) records the starts so far and holds the best one's state, so a killed run redoes
    at most one start, with the same seeds and so the same result.
    """
    cfg, run_dir = trainer.cfg, trainer.run_dir
    starts, best = (state["starts"], state) if state else ([], None)  # the checkpoint's state is the best start's
    for start in range(len(starts), cfg.trainer.restarts):
        seed = start_seed(cfg.seed, start)
        model, optimizer, sampler = _fresh(cfg, seed, trainer.device, trainer.dataset)
        lines = []
        for epoch in range(cfg.trainer.restart_epochs):
            lines.append(trainer.epoch(model, optimizer, sampler, epoch, bar, epochs_kept=0))
        starts.append({"start": start, "seed": seed, "losses": [m["loss"] for m in lines],
                       "seconds": sum(m["seconds"] for m in lines)})
        if best is None or lines[-1]["loss"] < best["metrics"]["loss"]:
            best = {**_training_state(model, optimizer, sampler), "metrics": lines[-1], "best_start": start,
                    "best_lines": [json.dumps(m) for m in lines]}
        save_checkpoint(run_dir, {**best, "config": resolved, "epoch": 0, "finished": False, "starts": starts})
    write_json(run_dir / STARTS, {"chosen": best["best_start"], "starts": starts,
                                  "chosen_by": f"lowest mean training loss in epoch {cfg.trainer.restart_epochs}"})
    write_text(run_dir / METRICS, "".join(line + "\n" for line in best["best_lines"]))
    return {**best, "epoch": cfg.trainer.restart_epochs, "starts": starts}


def train(cfg: DictConfig, run_dir) -> dict:
    """Train to the end (or resume), writing checkpoint.pt and metrics.jsonl into run_dir.

    With trainer.restarts > 1 the run first trains that many starts and continues the best (see
    _select_start); its epochs count towards trainer.epochs. Returns the final epoch's metrics.
    """
    run_dir = Path(run_dir)
    validate_train(cfg)  # the one validation: apps call this function and nothing else
    with run_lock(run_dir):
        return _train(cfg, run_dir)


def _train(cfg: DictConfig, run_dir: Path) -> dict:
    state = state_to_continue(cfg, run_dir)
    t_cfg = cfg.trainer
    if t_cfg.threads:
        torch.set_num_threads(t_cfg.threads)
    device = pick_device(t_cfg.device)
    trainer = Trainer(cfg, run_dir, device)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("resume", None)  # the checkpoint holds the run's config, not how this invocation began
    logger = build_logger(cfg.logger.name, run_dir, resolved)
    restarts = t_cfg.restarts
    selecting = restarts > 1 and (state is None or state["epoch"] == 0)
    select_epochs = t_cfg.restart_epochs if restarts > 1 else 0
    if state is None:
        done = 0  # epochs already trained, counted as the progress bar counts them
    elif selecting:  # killed while choosing a start: the starts finished so far
        done = len(state.get("starts", [])) * select_epochs
    else:  # the discarded starts, then the chosen start's epochs
        done = (restarts - 1) * select_epochs + state["epoch"]
    name = cfg.objective.get("name", "objective") + (f" {cfg.prior.get('name', 'prior')}" if cfg.get("prior") else "")
    bar = tqdm(total=total_epochs(t_cfg) * trainer.steps_per_epoch,
               initial=done * trainer.steps_per_epoch, disable=not t_cfg.progress, desc=f"train {name}",
               unit="step", dynamic_ncols=True)
    if selecting:
        state = _select_start(trainer, resolved, state, bar)
    model, optimizer, sampler = _fresh(cfg, cfg.seed, device, trainer.dataset)
    first_epoch = 0
    if state is not None:
        _restore(state, model, optimizer, sampler)
        first_epoch = state["epoch"]
        _drop_metrics_after(run_dir / METRICS, first_epoch)
    chosen_start = {"starts": state.get("starts", []), "best_start": state.get("best_start", 0)} if state else {}
    metrics = state["metrics"] if state else {}
    checks = reseed_epochs(select_epochs or 1, t_cfg.epochs) if t_cfg.reseed_below > 0 else range(0)
    keep_from = t_cfg.keep_from
    least_leak = state.get("kept") if state else None
    if keep_from and least_leak is None and first_epoch >= keep_from:  # extended by resume with keep_from added:
        least_leak = trainer.leak_candidate(model, first_epoch)  # the leak a run with it would have read there
        if least_leak is not None:
            _add_to_metrics_line(run_dir, first_epoch, {"map_leak": round(least_leak["leak"], 6)})
    for epoch in range(first_epoch, t_cfg.epochs):
        reseeded = trainer.check_maps(model, optimizer, epoch) if epoch in checks else []
        metrics = trainer.epoch(model, optimizer, sampler, epoch, bar, epochs_kept=epoch, logger=logger)
        if reseeded:
            metrics["reseeded_maps"] = reseeded
        ending = {}
        if keep_from and epoch + 1 >= keep_from and (candidate := trainer.leak_candidate(model, epoch + 1)):
            metrics["map_leak"] = round(candidate["leak"], 6)
            if least_leak is None or candidate["leak"] < least_leak["leak"]:
                least_leak = candidate
            if epoch + 1 == t_cfg.epochs:  # the run ends on the epoch whose maps leak least
                metrics["kept_epoch"] = least_leak["epoch"]
                if least_leak["epoch"] != epoch + 1:
                    ending = {"model": least_leak["model"], "last_model": model.state_dict()}
        append_line(run_dir / METRICS, json.dumps(metrics))
        logger.log_epoch(epoch + 1, metrics, model.encoder, trainer.observations[0])
        save_checkpoint(run_dir, {"config": resolved, "epoch": epoch + 1, "finished": epoch + 1 == t_cfg.epochs,
                                  **chosen_start, "metrics": metrics, **_training_state(model, optimizer, sampler),
                                  **({"kept": least_leak} if least_leak else {}), **ending})
    bar.close()
    logger.close()
    return metrics
