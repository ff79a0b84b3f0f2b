"""An encoder applied to whole videos outside training: latents in eval mode, and BatchNorm statistics for an
untrained encoder. Used by evaluation, a run's pictures and `Run.latents_px`."""
import numpy as np
import torch


@torch.no_grad()
def encode(encoder: torch.nn.Module, frames: np.ndarray, batch_size: int = 100) -> np.ndarray:
    encoder.eval()
    out = [encoder(torch.from_numpy(frames[i:i + batch_size])) for i in range(0, len(frames), batch_size)]
    return torch.cat(out).double().numpy()


@torch.no_grad()
def calibrate_batchnorm(encoder: torch.nn.Module, frames: np.ndarray, batch_size: int = 100) -> None:
    """Give an untrained encoder's BatchNorm layers the training video's statistics (a fair control)."""
    for module in encoder.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the batches below
    encoder.train()
    for i in range(0, len(frames), batch_size):
        encoder(torch.from_numpy(frames[i:i + batch_size]))
