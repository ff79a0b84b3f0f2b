"""The Hydra apps behind `rpm train`, `rpm evaluate`, `rpm figures` and `rpm theory`.

Each is a thin @hydra.main around a plain function that the tests call directly.
"""
import logging
import math
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from rpm_cli import CONFIG_DIR
from rpm_cli.errors import RunDirBusy, TrainingDiverged, UserError, reported
from rpm_cli.layout import CHECKPOINT, LATEST, RUN_LITTER
from rpm_cli.resolvers import register_resolvers

register_resolvers()  # before Hydra composes any config (launcher workers import this module too)

log = logging.getLogger("rpm")




def discard_if_empty(run_dir: Path) -> None:
    """A run that failed before its first checkpoint leaves no directory behind, nor the empty date dirs
    Hydra made above it. Only what rpm and Hydra write is removed, and a dir only when that leaves it empty,
    so `hydra.run.dir=.` or a dir holding other work is never wiped."""
    if not run_dir.is_dir() or (run_dir / CHECKPOINT).exists():
        return
    logging.shutdown()
    for name in RUN_LITTER:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
    stop = Path.cwd().resolve()
    for directory in [run_dir.resolve(), *run_dir.resolve().parents]:
        if directory == stop or stop not in directory.parents:
            break
        try:
            directory.rmdir()  # only when empty
        except OSError:
            break


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def train_main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    with reported(debug=cfg.get("debug")):
        from rpm_cli.config import validate_train

        metrics = None
        try:
            if not cfg.resume and not (multirun and (run_dir / CHECKPOINT).exists()):
                validate_train(cfg)  # a bad value fails in a second, before torch loads (train() checks again)
            # torch and the training code only once a run starts: `rpm train --help`, `--cfg` stay instant
            from rpm_cli.resume import config_for_resume, sweep_job_again
            from rpm_cli.train import train

            if cfg.resume:
                cfg = config_for_resume(cfg.resume, list(hydra_cfg.overrides.task))
            elif multirun and (run_dir / CHECKPOINT).exists():  # the sweep was started again
                cfg, metrics = sweep_job_again(cfg, run_dir)
            if metrics is None:
                metrics = train(cfg, run_dir)
        except TrainingDiverged as exc:
            if not multirun:
                raise
            print(f"error: {exc}", file=sys.stderr)  # one job diverged: the sweep goes on, this point scores inf
            return float("inf")
        except BaseException as exc:
            if not cfg.resume and not isinstance(exc, RunDirBusy):
                discard_if_empty(run_dir)
            raise
        if hydra_cfg.mode == RunMode.RUN:
            from rpm_cli.atomic import point_symlink

            point_symlink(LATEST, run_dir)
        log.info("finished: %s", run_dir)
        from rpm_cli.data.build import dataset_class

        run_dataset = dataset_class(cfg.data)
        if cfg.evaluate:
            from rpm_cli.evaluate import evaluate_run
            from rpm_cli.figures.run import run_pictures
            from rpm_cli.runs import load_run

            if hydra_cfg.mode == RunMode.RUN:  # a single run gets its pictures, drawn from the same loaded run
                run = load_run(run_dir)
                evaluation = evaluate_run(run_dir, run=run)
                run_pictures(run)
            else:  # a sweep's jobs draw none: nobody looks at each of them
                evaluation = evaluate_run(run_dir)
            metrics.update({k: evaluation["val"][k] for k, _ in run_dataset.table})
        return sweep_value(cfg.sweep_metric, metrics, run_dataset.sweep_score)


def sweep_value(metric: str, metrics: dict, headline=("slot_l2_px", 1)) -> float:
    """What Hydra sweepers minimise: the validation split's headline score when evaluation ran (auto: the
    dataset's, e.g. the balls' slot L2 or clica's MCC, negated as higher is better), else the final training
    loss. Never a test score."""
    score, sign = headline
    if metric == "auto":
        metric = score if score in metrics else "loss"
    if metric not in metrics:
        raise UserError(f"sweep_metric={metric} needs evaluate=true (only the final loss is known without it)")
    value = float(metrics[metric]) * (sign if metric == score else 1)
    return value if math.isfinite(value) else float("inf")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def evaluate_main(cfg: DictConfig) -> None:
    with reported(debug=cfg.get("debug")):
        from rpm_cli.config import EVALUATE_DOMAINS, validate_keys
        from rpm_cli.layout import resolve_run_dir, runs_in_sweep

        validate_keys(cfg, EVALUATE_DOMAINS)  # a bad value or a missing run fails before torch loads
        runs_in_sweep(cfg.sweep_dir) if cfg.sweep_dir else resolve_run_dir(cfg.run_dir)
        from rpm_cli.evaluate import evaluate
        from rpm_cli.layout import pictures_current

        def draw(run):
            from rpm_cli.figures.run import run_pictures  # matplotlib's import only when a picture is drawn

            run_pictures(run)

        evaluate(cfg, then=draw if cfg.pictures else None, then_done=pictures_current)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="figures")
def figures_main(cfg: DictConfig) -> None:
    with reported(debug=cfg.get("debug")):
        from rpm_cli.figures.main import figures

        for path in figures(cfg, Path(HydraConfig.get().runtime.output_dir)):
            print(f"wrote {path}")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="theory")
def theory_main(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    with reported(debug=cfg.get("debug")):
        from rpm_cli.theory.lab import format_table, run_theory, validate_theory

        validate_theory(cfg)
        result = run_theory(cfg, out_dir)
        print(format_table(result))
        for path in result["files"]:
            print(f"wrote {path}")
        failed = [c["name"] for c in result["checks"] if c["passed"] is False]
    if failed:   # the table and every file are written first; a failing counted check is the run's failure
        print(f"error: {len(failed)} counted check(s) failed: {', '.join(failed)} (exit status 1)", file=sys.stderr)
        sys.exit(1)
