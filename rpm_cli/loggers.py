"""Where a run's numbers go besides metrics.jsonl (always written: resume and reports read it).

`logger=jsonl` adds nothing. `logger=tensorboard` also writes TensorBoard event files into
<run_dir>/tensorboard: per-step and per-epoch scalars (loss, the prior's parameters, frames/s), the maps of
one training frame once per epoch (encoders with maps), and the resolved config as text; `tensorboard --logdir outputs/train`
compares the runs of a sweep side by side.
"""
import json
from pathlib import Path

import torch

from rpm_cli.errors import UserError

INSTALL = "pip install -e .[tensorboard]"


class JsonlLogger:
    def log_step(self, step: int, scalars: dict) -> None:
        pass

    def log_epoch(self, epoch: int, metrics: dict, encoder, observation) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardLogger(JsonlLogger):
    def __init__(self, run_dir: Path, config: dict):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```")

    def log_step(self, step: int, scalars: dict) -> None:
        for name, value in scalars.items():
            self.writer.add_scalar(f"step/{name}", value, step)

    @torch.no_grad()
    def log_epoch(self, epoch: int, metrics: dict, encoder, observation) -> None:
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and name != "epoch":
                self.writer.add_scalar(f"epoch/{name}", value, epoch)
        if hasattr(encoder, "feature_maps"):  # an encoder with maps (com_cnn): one training frame's, side by side
            self._log_maps(epoch, encoder, observation)
        self.writer.flush()

    def _log_maps(self, epoch: int, encoder, frame) -> None:
        was_training = encoder.training
        encoder.eval()
        maps = encoder.feature_maps(frame[None])[0]  # (M, H, W) in (0, 1)
        encoder.train(was_training)
        self.writer.add_image("maps", torch.cat(list(maps), dim=1)[None].cpu(), epoch)

    def close(self) -> None:
        self.writer.close()


def check_available(name: str) -> None:
    """Before any work: a logger whose optional extra is missing is a one-line error."""
    if name == "tensorboard":
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise UserError(f"logger=tensorboard needs the optional extra: {INSTALL}") from None


def build_logger(name: str, run_dir: Path, config: dict) -> JsonlLogger:
    check_available(name)
    return TensorBoardLogger(run_dir, config) if name == "tensorboard" else JsonlLogger()
