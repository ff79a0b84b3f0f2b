"""Build the encoder and critic named by a config."""
import torch
from omegaconf import DictConfig

from rpm_cli.models.critics import GaussianCritic, LinearCritic
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


def build_critic(cfg: DictConfig, dim: int) -> torch.nn.Module:
    if cfg.prior.name == "gaussian":
        # The config gives θ in pixels; latents are in units of the image size.
        return GaussianCritic(cfg.prior.lengthscale / cfg.data.image_size, learn=cfg.prior.learn_lengthscale)
    return LinearCritic(dim, init_std=cfg.prior.init_std)
