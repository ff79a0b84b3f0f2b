"""`rpm figures`: what to draw, picked from the config: a sweep's summary, one run's pictures, or Fig. 1.

The command evaluates the runs it draws (`rpm evaluate`'s scores, reused when up to date) before anything
reads them: the readers (rpm_cli.records, the figures) never evaluate.
"""
from pathlib import Path

from omegaconf import DictConfig

from rpm_cli.config import FIGURES_DOMAINS, validate_keys
from rpm_cli.evaluate import evaluate_run
from rpm_cli.figures.fig1 import figure1, find_runs
from rpm_cli.figures.run import run_pictures
from rpm_cli.figures.sweep import summarise_sweep
from rpm_cli.layout import pictures_current, runs_in_sweep
from rpm_cli.runs import load_run


def figures(cfg: DictConfig, out_dir: Path) -> list[Path]:
    validate_keys(cfg, FIGURES_DOMAINS)
    if cfg.sweep_dir:
        for run_dir in runs_in_sweep(cfg.sweep_dir):
            evaluate_run(run_dir)
        return summarise_sweep(cfg.sweep_dir, cfg.x_key)["files"]
    if cfg.run_dir:
        return run_pictures(load_run(cfg.run_dir))
    runs = find_runs(cfg)
    for run_dir in (d for dirs in runs.values() for d in dirs):
        evaluate_run(run_dir)
    for run_dir in (runs["gaussian"][0], runs["linear"][0]):  # the runs panels B, D and E show: a person looks
        if not pictures_current(Path(run_dir)):  # at them; the other seeds' pictures on request (run_dir=)
            run_pictures(load_run(run_dir))
    return figure1(cfg, out_dir)
