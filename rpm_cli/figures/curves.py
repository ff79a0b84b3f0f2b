"""curves.png of a run: the training loss per epoch (every restart's curve, the chosen one continued), the
learned prior parameters per epoch and the held-out L2 per epoch where the run logged it."""
import math
from pathlib import Path

import numpy as np
from matplotlib.ticker import FormatStrFormatter

from rpm_cli.layout import METRICS_BOOKKEEPING
from rpm_cli.models.objectives import REGISTRY as OBJECTIVES
from rpm_cli.models.objectives import Objective
from rpm_cli.plotting import plt, save_png

PARAMETER_LABELS = {"lengthscale_px": "θ (px)", "weight_norm": "‖W‖", "dof": "ν (dof)", "temperature": "τ",
                    "offset_px": "‖offset‖ (px)", "transition_dev": "‖A − I‖"}
# An objective's per-epoch terms drawn beside its loss, not as parameters (objective=rpm).
LOSS_TERMS = ("elbo", "elbo_eq14", "q_gain")
HELD_OUT_LABELS = {"val_slot_l2_px": "slot L2 (each map → its ball)", "val_readout_l2_px": "joint L2 (all of z)"}


def learned_parameters(metrics: list[dict]) -> list[str]:
    """The learned prior parameters logged per epoch: every numeric key that is not a known non-parameter,
    in order of first appearance."""
    keys = []
    for line in metrics:
        for key, value in line.items():
            if (key not in keys and key not in METRICS_BOOKKEEPING and key not in LOSS_TERMS
                    and not key.startswith("val_")
                    and isinstance(value, (int, float)) and not isinstance(value, bool)):
                keys.append(key)
    return keys


def held_out_keys(metrics: list[dict]) -> list[str]:
    """The held-out scores logged per epoch (val_*_px), the slot and joint L2 first."""
    present = {k for line in metrics for k in line if k.startswith("val_") and k.endswith("_px")}
    return [k for k in HELD_OUT_LABELS if k in present] + sorted(present - set(HELD_OUT_LABELS))


def _series(metrics: list[dict], key: str, scale: float = 1.0) -> tuple[list, list]:
    pairs = [(m["epoch"], m[key] * scale) for m in metrics
             if isinstance(m.get(key), (int, float)) and math.isfinite(m[key])]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _draw_loss(ax, metrics, starts, batch_size, objective: type[Objective], per_pair) -> None:
    chosen = starts.get("chosen") if starts else None
    for s in (starts or {}).get("starts", []):
        if s.get("start") == chosen:
            continue
        losses = np.asarray(s["losses"], float) * per_pair
        ax.plot(np.arange(1, len(losses) + 1), losses, color="0.6", lw=0.8, alpha=0.8,
                label="other starts" if "other starts" not in ax.get_legend_handles_labels()[1] else None)
    epochs, loss = _series(metrics, "loss", per_pair)
    label = f"chosen start ({chosen}) and its continuation" if starts else "training loss"
    ax.plot(epochs, loss, color="C0", lw=1.8, label=label)
    if starts:
        chosen_losses = next((s["losses"] for s in starts.get("starts", []) if s.get("start") == chosen), None)
        if chosen_losses:
            at = len(chosen_losses)
            ax.plot([at], [chosen_losses[-1] * per_pair], "o", color="C0", ms=6, mfc="white", mew=1.5)
            ax.axvline(at, color="0.4", ls=":", lw=0.8)
            ax.annotate("start chosen", (at, 0), xycoords=("data", "axes fraction"), xytext=(3, 4),
                        textcoords="offset points", fontsize=7, color="0.3")
    epochs_eq14, eq14 = _series(metrics, "elbo_eq14", -1.0)
    if eq14 and any(m.get("q_gain") for m in metrics):  # a posterior other than Eq. 14's: what it buys
        ax.plot(epochs_eq14, eq14, color="C1", lw=1.2, ls="--", label="−ELBO with Q of Eq. 14")
    if objective.chance_is_log_n and batch_size and batch_size > 2:
        ceiling = math.log(batch_size - 1)
        ax.axhline(ceiling, color="C3", ls="--", lw=1,
                   label=f"log N = {ceiling:.2f} (N = B − 1 = {batch_size - 1} negatives; I_N = 0)")
    ax.set_xlabel("epoch")
    ax.set_ylabel(objective.loss_axis + (" per pair" if per_pair != 1.0 else ""))
    ax.set_title(objective.loss_label)
    if not objective.has_prior and loss and min(loss) > 0 and max(loss) / min(loss) > 30:  # an MSE
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.legend(fontsize=7, loc="best")


def _draw_parameters(ax, metrics) -> None:
    keys = learned_parameters(metrics)
    if not keys:
        ax.text(0.5, 0.5, "no learned parameters", ha="center", va="center", transform=ax.transAxes,
                fontsize=10, color="0.4")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("learned prior parameters")
        return
    values = []
    for i, key in enumerate(keys):
        epochs, ys = _series(metrics, key)
        values += ys
        ax.plot(epochs, ys, marker="." if len(ys) < 30 else None, color=f"C{i + 1}",
                label=PARAMETER_LABELS.get(key, key))
    if values and min(values) > 0 and max(values) / min(values) > 100:
        ax.set_yscale("log")  # parameters on very different scales share the axis
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.set_xlabel("epoch")
    ax.set_ylabel(PARAMETER_LABELS.get(keys[0], keys[0]) if len(keys) == 1 else "value")
    ax.set_title("learned prior parameters")
    ax.legend(fontsize=7, loc="best")


def _draw_held_out(ax, metrics, keys) -> None:
    for i, key in enumerate(keys):
        epochs, ys = _series(metrics, key)
        ax.plot(epochs, ys, marker="o", ms=3, color=f"C{i + 4}", label=HELD_OUT_LABELS.get(key, key))
    ax.set_xlabel("epoch")
    ax.set_ylabel("held-out mean L2 (px)")
    ax.set_ylim(bottom=0)
    ax.set_title("held-out readout error")
    ax.legend(fontsize=7, loc="best")


def curves_figure(metrics: list[dict], starts: dict | None = None, *, batch_size: int | None = None,
                  objective: str | type[Objective] = "infonce", loss_reduction: str = "mean",
                  title: str | None = None):
    """The figure of draw_curves (the caller saves or closes it). Panels: loss, learned parameters and, when
    metrics holds val_*_px scores, held-out L2.

    `objective` is the run's Objective class or its name ("infonce", "rpm", "supervised"): it labels the loss
    and says whether log N is drawn. `batch_size` B gives the InfoNCE
    ceiling log N, N = B - 1 (else a logged "batch_size" or "negatives" key is used). With loss_reduction="sum" the logged
    losses are B times the per-pair loss and are divided by B so they compare with log N.
    """
    if batch_size is None:  # from the logged batch size, or the logged number of negatives N = B - 1
        logged = [int(m["batch_size"]) if isinstance(m.get("batch_size"), (int, float)) else int(m["negatives"]) + 1
                  for m in metrics if isinstance(m.get("batch_size", m.get("negatives")), (int, float))]
        batch_size = logged[0] if logged else None
    per_pair = 1.0 / batch_size if loss_reduction == "sum" and batch_size else 1.0
    held_out = held_out_keys(metrics)
    n_panels = 3 if held_out else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(4.6 * n_panels, 3.6), squeeze=False)
    axes = axes[0]
    objective = OBJECTIVES[objective] if isinstance(objective, str) else objective
    _draw_loss(axes[0], metrics, starts, batch_size, objective, per_pair)
    _draw_parameters(axes[1], metrics)
    if held_out:
        _draw_held_out(axes[2], metrics, held_out)
    for ax, letter in zip(axes, "abc"):
        ax.text(-0.1, 1.04, f"({letter})", transform=ax.transAxes, fontsize=10, fontweight="bold")
        ax.grid(alpha=0.25)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def draw_curves(metrics: list[dict], starts: dict | None, out_path, *, batch_size: int | None = None,
                objective: str | type[Objective] = "infonce", loss_reduction: str = "mean",
                title: str | None = None) -> Path:
    """curves.png from a run's metrics.jsonl lines and starts.json (or None); see curves_figure."""
    fig = curves_figure(metrics, starts, batch_size=batch_size, objective=objective,
                        loss_reduction=loss_reduction, title=title)
    return save_png(fig, out_path)
