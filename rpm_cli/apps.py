"""The Hydra apps behind `rpm train`, `rpm evaluate`, `rpm figures` and `rpm theory`.

Each is a thin @hydra.main around a plain function that the tests call directly.
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
from rpm_cli.errors import UserError, reported

log = logging.getLogger("rpm")


def discard_if_empty(run_dir: Path) -> None:
    """A run that failed before its first checkpoint leaves no directory behind, nor the empty date dirs
    Hydra made above it."""
    if run_dir.is_dir() and not (run_dir / "checkpoint.pt").exists():
        logging.shutdown()
        shutil.rmtree(run_dir, ignore_errors=True)
        stop = Path.cwd().resolve()
        for parent in run_dir.resolve().parents:
            if parent == stop or stop not in parent.parents:
                break
            try:
                parent.rmdir()  # only when empty
            except OSError:
                break


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def train_main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    with reported(debug=bool(cfg.get("debug"))):
        from rpm_cli.resume import config_for_resume
        from rpm_cli.train import train

        try:
            if cfg.resume:
                cfg = config_for_resume(cfg.resume, list(hydra_cfg.overrides.task))
            metrics = train(cfg, run_dir)
        except BaseException as exc:
            from rpm_cli.runs import RunDirBusy

            if not cfg.resume and not isinstance(exc, RunDirBusy):
                discard_if_empty(run_dir)
            raise
        if hydra_cfg.mode == RunMode.RUN:
            from rpm_cli.atomic import point_symlink
            from rpm_cli.runs import LATEST

            point_symlink(LATEST, run_dir)
        log.info("finished: %s", run_dir)
        if cfg.evaluate:
            from rpm_cli.evaluate import evaluate_run

            evaluation = evaluate_run(run_dir)
            metrics.update({k: evaluation["val"][k] for k in ("slot_l2_px", "readout_l2_px")})
        return sweep_value(cfg.sweep_metric, metrics)


def sweep_value(metric: str, metrics: dict) -> float:
    """What Hydra sweepers minimise: the validation video's slot L2 when evaluation ran (auto), else the final
    training loss. Never a test-video score."""
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
        from rpm_cli.figures.main import figures

        for path in figures(cfg, Path(HydraConfig.get().runtime.output_dir)):
            print(f"wrote {path}")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="theory")
def theory_main(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    with reported(debug=bool(cfg.get("debug"))):
        from rpm_cli.theory.lab import format_table, run_theory, validate_theory

        validate_theory(cfg)
        result = run_theory(cfg, out_dir)
        print(format_table(result))
        for path in result["files"]:
            print(f"wrote {path}")
