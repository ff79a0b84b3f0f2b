"""An encoder applied to whole videos outside training: latents in eval mode, and BatchNorm statistics for an
untrained encoder. Used by evaluation, a run's pictures and `Run.latents`."""
import numpy as np
import torch

from rpm_cli.models import sparse


def batches(encoder: torch.nn.Module, frames: np.ndarray, batch_size: int):
    """The encoder's inputs for consecutive batches of a video: crops from the video's (kept) CropIndex when
    the encoder skips the background, else the frames."""
    video = torch.from_numpy(frames)
    if getattr(encoder, "skip_background", False) and sparse.applies(encoder, video):
        index = sparse.crop_index(video, encoder.crop_tiles, encoder.tile)
        return (index.batch(torch.arange(i, min(i + batch_size, len(video))))
                for i in range(0, len(video), batch_size))
    return (video[i:i + batch_size] for i in range(0, len(video), batch_size))


@torch.no_grad()
def encode(encoder: torch.nn.Module, frames: np.ndarray, batch_size: int = 100) -> np.ndarray:
    encoder.eval()
    return torch.cat([encoder(x) for x in batches(encoder, frames, batch_size)]).double().numpy()


@torch.no_grad()
def calibrate_batchnorm(encoder: torch.nn.Module, frames: np.ndarray, batch_size: int = 100) -> None:
    """Give an untrained encoder's BatchNorm layers the training video's statistics (a fair control)."""
    for module in encoder.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the batches below
    encoder.train()
    for x in batches(encoder, frames, batch_size):
        encoder(x)
