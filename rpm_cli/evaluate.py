"""`rpm evaluate`: score a finished run on the validation video and on the test video, each with controls.

For each of the two held-out videos: the linear readout fitted on the training video (joint and per-slot L2
in pixels), the same readout of a random-init encoder and of chance, the finite-N InfoNCE estimate I_N
(Eq. 6) at the training batch and over all pairs, and next-frame retrieval with P(j|i) ∝ f_θ(z_i, z'_j)
(Eq. 34). The validation scores are what selection (tuning, sweepers) may read; the test scores are reported.
"""
import json
import math
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from rpm_cli.atomic import write_json
from rpm_cli.config import EVALUATE_DOMAINS, validate_keys
from rpm_cli.data.balls import Video
from rpm_cli.models.build import build_encoder
from rpm_cli.models.inference import calibrate_batchnorm, encode
from rpm_cli.objectives import info_nce_estimate_full, negatives
from rpm_cli.readout import chance_metrics, readout_metrics
from rpm_cli.layout import CHECKPOINT, EVALUATION, EVALUATION_FORMAT, resolve_run_dir, runs_in_sweep
from rpm_cli.records import is_evaluated
from rpm_cli.runs import Run, load_checkpoint, load_run

ROLES = ("val", "test")


def readout_scores(z_train, train: Video, z_held, held: Video) -> dict:
    return readout_metrics(z_train, train.centres, z_held, held.centres)


@torch.no_grad()
def prior_scores(model, z_held_px: np.ndarray, image_size: int, batch_size: int) -> dict:
    """I_N and retrieval of the true next frame on a held-out video's consecutive pairs (z in pixels).

    Anchors are frames 0..P-1, candidates their next frames 1..P. Candidate i - 1 is frame i itself (the
    previous pair's next frame), so a prior that peaks at z' = z ranks the base frame first: retrieval is
    also reported with that candidate left out.
    """
    z = torch.from_numpy(z_held_px / image_size)
    base, nxt = z[:-1], z[1:]
    dtype = _dtype(model.prior)
    log_f = model.prior_logits(base.to(dtype), nxt.to(dtype)).double()
    pairs = len(base)
    batch_size = min(batch_size, pairs)  # a held-out video shorter than a training batch: one batch of all pairs
    order = torch.randperm(pairs, generator=torch.Generator().manual_seed(0))
    blocks = [order[i:i + batch_size] for i in range(0, pairs - batch_size + 1, batch_size)]
    batch_estimates = [info_nce_estimate_full(log_f[b][:, b]) for b in blocks]
    true = log_f.diagonal()[:, None]
    no_self = log_f.clone()
    no_self[torch.arange(1, pairs), torch.arange(pairs - 1)] = -math.inf  # candidate j = i - 1 holds frame i
    rank, rank_no_self = _worst_rank(log_f, true), _worst_rank(no_self, true)
    return {
        "infonce_estimate_batch": float(np.mean(batch_estimates)), "negatives_batch": negatives(batch_size),
        "infonce_estimate_all": info_nce_estimate_full(log_f), "negatives_all": negatives(pairs),
        "retrieval_top1": float((rank == 1).double().mean()), "retrieval_mrr": float((1.0 / rank).mean()),
        "retrieval_top1_without_base": float((rank_no_self == 1).double().mean()),
        "retrieval_mrr_without_base": float((1.0 / rank_no_self).mean()),
        "retrieval_candidates": pairs,
    }


def _worst_rank(scores: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """The true candidate's rank, ties counted against it: a prior that scores all alike earns no credit."""
    return (scores > true).sum(1) + (scores == true).sum(1)


def _dtype(module) -> torch.dtype:
    params = list(module.parameters())
    return params[0].dtype if params else torch.float32


def motion_lengthscale_px(centres: np.ndarray) -> float:
    """The θ the simulated motion implies for a Gaussian f_θ on ideal per-ball latents.

    If z holds the ball centres, z' - z stacks each ball's step: E‖z' - z‖² = n_balls · step², spread
    evenly over 2 · n_balls coordinates, so the per-coordinate spread is step / √2 (22.6 px for 32-px
    steps), the θ of the Gaussian N(z'; z, θ² I) closest to the true transition. Measured from the video.
    """
    steps = np.diff(centres, axis=0)
    return float(np.sqrt((steps**2).mean()))


def random_init_encoder(run: Run, batch_size: int):
    """An untrained encoder with the initial weights of the start the run continued, BatchNorm statistics
    taken from the training video."""
    torch.manual_seed(run.init_seed)
    encoder = build_encoder(run.cfg)  # the first module a run builds from its seed (models/model.py)
    calibrate_batchnorm(encoder, run.video("train").frames, batch_size)
    encoder.eval()
    return encoder


def evaluate_run(run_dir, batch_size: int = 100, force: bool = False, run: Run | None = None) -> dict:
    """Evaluate one run; writes and returns evaluation.json (re-running gives the same file). Scores only:
    the commands draw a run's pictures where a person will look at them, from the same `run` when they pass
    it (its videos and latents are then loaded and computed once)."""
    run_dir = Path(run_dir)
    state = load_checkpoint(run_dir / CHECKPOINT)
    out = run_dir / EVALUATION
    if not force and is_evaluated(run_dir, state):
        return json.loads(out.read_text())
    run = run if run is not None else load_run(run_dir)
    size = run.cfg.data.image_size
    train = run.video("train")
    z_train = run.latents_px("train")
    random_encoder = random_init_encoder(run, batch_size)
    z_random_train = encode(random_encoder, train.frames, batch_size) * size
    result = {"format": EVALUATION_FORMAT, "run_dir": str(run_dir), "epoch": run.state["epoch"],
              "n_train_frames": train.n_frames, "init_seed": run.init_seed,
              "random_init_is": "the initial weights of the start this run continued (seed init_seed), "
                                "BatchNorm statistics from the training video",
              "final_train": run.state["metrics"]}
    for role in ROLES:
        held = run.video(role)
        scores = readout_scores(z_train, train, run.latents_px(role), held)
        scores["n_frames"] = held.n_frames
        scores["random_init"] = readout_scores(z_random_train, train, encode(random_encoder, held.frames) * size, held)
        scores["chance"] = chance_metrics(train.centres, held.centres)
        if run.prior is not None:
            scores.update(prior_scores(run.model, run.latents_px(role), size, run.cfg.trainer.batch_size))
        result[role] = scores
    result["motion_lengthscale_px"] = motion_lengthscale_px(train.centres)
    write_json(out, result)
    return result


def format_table(result: dict) -> str:
    lines = [f"{'':<22} {'readout L2 (px)':>16} {'slot L2 (px)':>13}"]
    for role, label in (("val", "validation"), ("test", "test")):
        r = result[role]
        for name, scores in (("trained", r), ("random-init", r["random_init"]), ("chance", r["chance"])):
            lines.append(f"{label + ' ' + name:<22} {scores['readout_l2_px']:>16.2f} {scores['slot_l2_px']:>13.2f}")
    test = result["test"]
    if "retrieval_top1" in test:
        lines.append(f"test: I_N {test['infonce_estimate_batch']:.3f} (N={test['negatives_batch']}), "
                     f"{test['infonce_estimate_all']:.3f} (N={test['negatives_all']}); next-frame retrieval top-1 "
                     f"{test['retrieval_top1']:.3f}, MRR {test['retrieval_mrr']:.3f} (without the base frame: "
                     f"{test['retrieval_top1_without_base']:.3f}, {test['retrieval_mrr_without_base']:.3f})")
    theta = result["final_train"].get("lengthscale_px")
    if theta is not None:
        lines.append(f"learned θ {theta:.2f} px; the motion implies {result['motion_lengthscale_px']:.2f} px")
    return "\n".join(lines)


def evaluate(cfg: DictConfig, then=None) -> None:
    """Evaluate `run_dir` (default: the latest run), or every run below `sweep_dir`; `then(run)`, when given,
    gets each loaded run afterwards (the command draws its pictures from it)."""
    validate_keys(cfg, EVALUATE_DOMAINS)
    run_dirs = runs_in_sweep(cfg.sweep_dir) if cfg.sweep_dir else [resolve_run_dir(cfg.run_dir)]
    for run_dir in run_dirs:
        run = load_run(run_dir) if then is not None else None
        result = evaluate_run(run_dir, cfg.batch_size, force=cfg.force, run=run)
        print(f"{run_dir}\n{format_table(result)}")
        if run is not None:
            then(run)
