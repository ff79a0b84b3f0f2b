"""Build the encoder a config names, and pick the device."""
import torch
from omegaconf import DictConfig

from rpm_cli.models.encoder import CentreOfMassEncoder


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def build_encoder(cfg: DictConfig) -> CentreOfMassEncoder:
    return CentreOfMassEncoder(n_maps=cfg.encoder.n_maps, hidden_channels=cfg.encoder.hidden_channels,
                               # Checkpoints written before this key existed used PyTorch's default, 0.
                               map_bias_init=cfg.encoder.get("map_bias_init", 0.0),
                               skip_background=cfg.encoder.get("skip_background", True))
