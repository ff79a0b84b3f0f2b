"""`rpm evaluate`: score a finished run on the validation split and on the test split, each with controls.

For each of the two held-out splits: the dataset's scores (the balls: the linear readouts fitted on the
training video, joint and per-slot L2 in pixels; clica: linear R² and MCC), the same scores of a random-init
encoder and at chance, the finite-N InfoNCE estimate I_N (Eq. 6) at the training batch and over all pairs,
and retrieval of each pair's second observation with P(j|i) ∝ f_θ(z_i, z'_j) (Eq. 34). The validation scores
are what selection (tuning, sweepers) may read; the test scores are reported.
"""
import json
import math
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from rpm_cli.atomic import write_json
from rpm_cli.config import EVALUATE_DOMAINS, validate_keys
from rpm_cli.data.balls_dataset import BallsDataset
from rpm_cli.data.base import Split
from rpm_cli.data.build import dataset_class
from rpm_cli.models.build import build_encoder
from rpm_cli.models.inference import calibrate_batchnorm, encode
from rpm_cli.objectives import info_nce_estimate_full, negatives
from rpm_cli.layout import CHECKPOINT, EVALUATION, EVALUATION_FORMAT, resolve_run_dir, runs_in_sweep
from rpm_cli.records import is_evaluated
from rpm_cli.runs import Run, load_checkpoint, load_run

ROLES = ("val", "test")


@torch.no_grad()
def prior_scores(model, z_held: np.ndarray, held: Split, batch_size: int) -> dict:
    """I_N and retrieval of each pair's true second observation on a held-out split (z in length units).

    Anchors are the pairs' first observations, candidates their second ones. In a video, candidate i - 1 is
    frame i itself (the previous pair's next frame), so a prior that peaks at z' = z ranks the anchor's own
    observation first: retrieval is also reported with such candidates left out.
    """
    z = torch.from_numpy(z_held / model.length_unit)
    base, nxt = z[held.first], z[held.second]
    dtype = _dtype(model.prior)
    log_f = model.prior_logits(base.to(dtype), nxt.to(dtype)).double()
    pairs = len(base)
    batch_size = min(batch_size, pairs)  # a held-out video shorter than a training batch: one batch of all pairs
    order = torch.randperm(pairs, generator=torch.Generator().manual_seed(0))
    blocks = [order[i:i + batch_size] for i in range(0, pairs - batch_size + 1, batch_size)]
    batch_estimates = [info_nce_estimate_full(log_f[b][:, b]) for b in blocks]
    true = log_f.diagonal()[:, None]
    no_self = log_f.clone()
    no_self[torch.from_numpy(held.second[None, :] == held.first[:, None])] = -math.inf  # the anchor itself
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


def random_init_encoder(run: Run, batch_size: int):
    """An untrained encoder with the initial weights of the start the run continued, BatchNorm statistics
    (if it has any) taken from the training split."""
    torch.manual_seed(run.init_seed)
    encoder = build_encoder(run.cfg.encoder, run.dataset)  # the first module a run builds from its seed (model.py)
    calibrate_batchnorm(encoder, run.split("train").observations, batch_size)
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
    dataset, unit = run.dataset, run.dataset.length_unit
    train = run.split("train")
    z_train = run.latents("train")
    random_encoder = random_init_encoder(run, batch_size)
    z_random_train = encode(random_encoder, train.observations, batch_size) * unit
    result = {"format": EVALUATION_FORMAT, "run_dir": str(run_dir), "epoch": run.state["epoch"],
              "n_train_frames": len(train.observations), "init_seed": run.init_seed,
              "random_init_is": "the initial weights of the start this run continued (seed init_seed), "
                                "BatchNorm statistics from the training split",
              "final_train": run.state["metrics"]}
    for role in ROLES:
        held = run.split(role)
        scores = dataset.scores(z_train, train, run.latents(role), held)
        scores["n_frames"] = len(held.observations)
        z_random = encode(random_encoder, held.observations) * unit
        scores["random_init"] = dataset.scores(z_random_train, train, z_random, held)
        scores["chance"] = dataset.chance(train, held)
        if run.prior is not None:
            scores.update(prior_scores(run.model, run.latents(role), held, run.cfg.trainer.batch_size))
        result[role] = scores
    result.update(dataset.extras(train))
    write_json(out, result)
    return result


def format_table(result: dict, columns=BallsDataset.table, unit: str = "px") -> str:
    """The scores of both held-out splits with their controls, `columns` being the dataset's (key, label)."""
    (key_a, label_a), (key_b, label_b) = columns
    lines = [f"{'':<22} {label_a:>16} {label_b:>13}"]
    for role, label in (("val", "validation"), ("test", "test")):
        r = result[role]
        for name, scores in (("trained", r), ("random-init", r["random_init"]), ("chance", r["chance"])):
            lines.append(f"{label + ' ' + name:<22} {scores[key_a]:>16.2f} {scores[key_b]:>13.2f}")
    test = result["test"]
    if "retrieval_top1" in test:
        lines.append(f"test: I_N {test['infonce_estimate_batch']:.3f} (N={test['negatives_batch']}), "
                     f"{test['infonce_estimate_all']:.3f} (N={test['negatives_all']}); next-frame retrieval top-1 "
                     f"{test['retrieval_top1']:.3f}, MRR {test['retrieval_mrr']:.3f} (without the base frame: "
                     f"{test['retrieval_top1_without_base']:.3f}, {test['retrieval_mrr_without_base']:.3f})")
    theta = result["final_train"].get("lengthscale_px")
    if theta is not None:
        implied = result.get("motion_lengthscale_px")
        lines.append(f"learned θ {theta:.3g} {unit}".rstrip()
                     + (f"; the motion implies {implied:.2f} {unit}" if implied is not None else ""))
    return "\n".join(lines)


def evaluate(cfg: DictConfig, then=None, then_done=None) -> None:
    """Evaluate `run_dir` (default: the latest run), or every run below `sweep_dir`; `then(run)`, when given,
    gets each loaded run afterwards (the command draws its pictures from it), but for a run where
    `then_done(run_dir)` is true and force=false."""
    validate_keys(cfg, EVALUATE_DOMAINS)
    run_dirs = runs_in_sweep(cfg.sweep_dir) if cfg.sweep_dir else [resolve_run_dir(cfg.run_dir)]
    for run_dir in run_dirs:
        wanted = then is not None and (cfg.force or then_done is None or not then_done(Path(run_dir)))
        run = load_run(run_dir) if wanted else None
        result = evaluate_run(run_dir, cfg.batch_size, force=cfg.force, run=run)
        dataset = dataset_class(load_checkpoint(Path(run_dir) / CHECKPOINT)["config"]["data"])
        print(f"{run_dir}\n{format_table(result, dataset.table, dataset.unit)}")
        if wanted:
            then(run)
