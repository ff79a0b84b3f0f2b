"""Shared plotting helpers: a headless backend and atomic PNG + PDF saving."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rpm_cli.atomic import atomic_path  # noqa: E402


def save_figure(fig, path_stem, formats=("png", "pdf"), dpi=120) -> list[Path]:
    """Write `path_stem`.png/.pdf atomically; returns the paths."""
    paths = []
    for fmt in formats:
        path = Path(f"{path_stem}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def save_png(fig, out_path) -> Path:
    """One PNG at out_path (".png" added when missing), written atomically."""
    out_path = Path(out_path)
    stem = out_path.with_suffix("") if out_path.suffix.lower() == ".png" else out_path
    return save_figure(fig, stem, formats=("png",))[0]


def frame_axes(ax, size: int) -> None:
    """Axes in image coordinates (y down) on a black background, like a frame of the video."""
    ax.set_xlim(0, size)
    ax.set_ylim(size, 0)
    ax.set_aspect("equal")
    ax.set_facecolor("black")
    ax.set_xticks([])
    ax.set_yticks([])
