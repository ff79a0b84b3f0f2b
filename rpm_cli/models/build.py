"""Build the encoder a config names, and pick the device."""
import torch
from omegaconf import DictConfig

from rpm_cli.models import sparse
from rpm_cli.models.encoder import CentreOfMassEncoder


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


# Latent units f_θ sees -> (how many per image size, offset): z in image units (0, 1) becomes z * a + b.
LATENT_UNITS = {"image": (1.0, 0.0), "pixels": (None, 0.0), "signed": (2.0, -1.0)}


def skips_background(cfg: DictConfig) -> bool:
    """The background-skipping pass is exact on black frames; other backgrounds take the dense pass."""
    return bool(cfg.encoder.skip_background) and cfg.data.background == "black"


def build_encoder(cfg: DictConfig) -> CentreOfMassEncoder:
    return CentreOfMassEncoder(n_maps=cfg.encoder.n_maps, hidden_channels=cfg.encoder.hidden_channels,
                               map_bias_init=cfg.encoder.map_bias_init, skip_background=skips_background(cfg),
                               crop_tiles=sparse.crop_tiles(cfg.data.ball_diameter))


def batch_source(cfg: DictConfig, frames: torch.Tensor):
    """index -> the encoder's input for those frames of a video: their crops, found once for the whole video
    (sparse.CropIndex), when the encoder takes the background-skipping pass; else the frames themselves."""
    if skips_background(cfg) and sparse.frames_fit(frames):
        return sparse.crop_index(frames, sparse.crop_tiles(cfg.data.ball_diameter)).batch
    return lambda index: frames[index]


def latent_scale(cfg: DictConfig) -> tuple[float, float]:
    """(a, b) such that f_θ sees a * z + b for the encoder's z in image units (encoder.latent_units)."""
    a, b = LATENT_UNITS[cfg.encoder.latent_units]
    return (float(cfg.data.image_size) if a is None else a), b
