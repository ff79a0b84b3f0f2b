"""The Hydra apps behind `rpm train`, `rpm evaluate` and `rpm figures`.

Each is a thin @hydra.main around a plain function. Configs are validated before torch is imported, so a
mistyped value is reported in well under a second.
"""
import logging
import math
import shutil
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from rpm_cli import CONFIG_DIR
from rpm_cli.config import validate_train
from rpm_cli.errors import UserError, reported

log = logging.getLogger("rpm")


def _discard_if_empty(run_dir: Path) -> None:
    """A run that failed before training wrote anything leaves no directory behind."""
    if run_dir.is_dir() and not (run_dir / "checkpoint.pt").exists() and not (run_dir / "metrics.jsonl").exists():
        logging.shutdown()
        shutil.rmtree(run_dir, ignore_errors=True)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def train_main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    with reported(debug=bool(cfg.get("debug"))):
        try:
            if not cfg.resume:
                validate_train(cfg)  # before importing torch: bad input is reported at once
            from rpm_cli.train import train

            metrics = train(cfg, run_dir)
        except UserError:
            if not cfg.resume:
                _discard_if_empty(run_dir)
            raise
        if hydra_cfg.mode == RunMode.RUN:
            from rpm_cli.atomic import point_symlink
            from rpm_cli.runs import LATEST

            point_symlink(LATEST, run_dir)
        log.info("finished: %s", run_dir)
        if cfg.evaluate:
            from rpm_cli.evaluate import evaluate_run

            metrics.update(evaluate_run(run_dir))
        return sweep_value(cfg.sweep_metric, metrics)


def sweep_value(metric: str, metrics: dict) -> float:
    """What Hydra sweepers minimise: slot L2 when evaluation ran (auto), else the final loss."""
    if metric == "auto":
        metric = "slot_l2_px" if "slot_l2_px" in metrics else "loss"
    if metric not in metrics:
        raise UserError(f"sweep_metric={metric} needs evaluate=true (only the final loss is known without it)")
    value = float(metrics[metric])
    return value if math.isfinite(value) else float("inf")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def evaluate_main(cfg: DictConfig) -> None:
    with reported(debug=bool(cfg.get("debug"))):
        from rpm_cli.evaluate import evaluate

        evaluate(cfg)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="figures")
def figures_main(cfg: DictConfig) -> None:
    with reported(debug=bool(cfg.get("debug"))):
        if cfg.sweep_dir:
            from rpm_cli.figures.sweep import summarise_sweep

            summary = summarise_sweep(cfg.sweep_dir, cfg.x_key)
            for path in summary["files"]:
                print(f"wrote {path}")
            return
        from rpm_cli.figures.fig1 import figure1

        out_dir = Path(HydraConfig.get().runtime.output_dir)
        for path in figure1(cfg, out_dir):
            print(f"wrote {path}")
