"""latents.png of a run on vector data (data=clica): each true latent against the latent dimension matched to
it, on the test pairs. A recovered latent lies on a line (any sign); a mixed one is a cloud."""
from pathlib import Path

import numpy as np

from rpm_cli.data.clica import matching
from rpm_cli.plotting import plt, save_png

POINTS = 1000  # points drawn per panel: enough to see the shape, few enough to stay readable


def draw_latent_scatter(z: np.ndarray, latents: np.ndarray, out_path, title: str = "") -> Path:
    matched = matching(z, latents)
    shown = np.random.default_rng(0).permutation(len(z))[:POINTS]
    fig, axes = plt.subplots(1, len(matched), figsize=(2.4 * len(matched), 2.6), squeeze=False)
    for ax, (i, j, r) in zip(axes[0], matched):
        ax.scatter(latents[shown, j], z[shown, i], s=2, alpha=0.4, color="tab:blue")
        ax.set_title(f"z{j + 1} → dim {i + 1}: r = {r:+.3f}", fontsize=8)
        ax.set_xlabel(f"true z{j + 1}", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("encoder dimension", fontsize=8)
    fig.suptitle(title or "each true latent against its matched dimension (test pairs)", fontsize=9)
    fig.tight_layout()
    return save_png(fig, out_path)
