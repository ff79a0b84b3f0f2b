"""`rpm figures`: what to draw, picked from the config: a sweep's summary, one run's pictures, or Fig. 1."""
from pathlib import Path

from omegaconf import DictConfig


def figures(cfg: DictConfig, out_dir: Path) -> list[Path]:
    from rpm_cli.config import FIGURES_DOMAINS, validate_keys

    validate_keys(cfg, FIGURES_DOMAINS)
    if cfg.sweep_dir:
        from rpm_cli.figures.sweep import summarise_sweep

        return summarise_sweep(cfg.sweep_dir, cfg.x_key)["files"]
    if cfg.run_dir:
        from rpm_cli.figures.run import run_pictures
        from rpm_cli.runs import load_run

        return run_pictures(load_run(cfg.run_dir))
    from rpm_cli.figures.fig1 import figure1

    return figure1(cfg, out_dir)
