"""What a run trains: the encoder plus the prior f_θ (InfoNCE) or a linear head (the supervised baseline)."""
import torch
from omegaconf import DictConfig

from rpm_cli.models.build import build_encoder, latent_scale
from rpm_cli.models.priors import build_prior
from rpm_cli.objectives import info_nce


class Model(torch.nn.Module):
    def __init__(self, cfg: DictConfig):
        super().__init__()
        # Built in this order from one seed, so a run's initial weights follow from its seed alone.
        self.encoder = build_encoder(cfg)
        self.supervised = cfg.objective.name == "supervised"
        dim = self.encoder.latent_dim
        self.head = torch.nn.Linear(dim, 2 * cfg.data.n_balls) if self.supervised else None
        # f_θ sees z in encoder.latent_units: a * z + b; its lengths are configured in pixels, image_size / a per unit.
        self.latent_a, self.latent_b = latent_scale(cfg)
        self.prior = None if self.supervised else build_prior(cfg.prior, dim=dim,
                                                              scale=cfg.data.image_size / self.latent_a)
        self.reduction = cfg.trainer.loss_reduction
        self.separate_batchnorm = cfg.trainer.batchnorm_batch == "separate"
        self.image_size = cfg.data.image_size

    def prior_logits(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        """log f_θ(z_i, z'_j) for encoder latents in image units."""
        if (self.latent_a, self.latent_b) != (1.0, 0.0):
            z, z_next = z * self.latent_a + self.latent_b, z_next * self.latent_a + self.latent_b
        return self.prior(z, z_next)

    def encode_pairs(self, frames: torch.Tensor) -> torch.Tensor:
        """z of 2B frames; base and next frames in one BatchNorm batch, or in one each (trainer.batchnorm_batch)."""
        if self.separate_batchnorm:
            return torch.cat([self.encoder(half) for half in frames.chunk(2)])
        return self.encoder(frames)

    def loss(self, frames: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """frames (2B, 3, H, W) uint8: B base frames then their B next frames; centres (2B, n_balls, 2) px."""
        z = self.encode_pairs(frames)
        if self.supervised:
            target = centres.reshape(len(centres), -1) / self.image_size
            return torch.nn.functional.mse_loss(self.head(z), target, reduction=self.reduction)
        base, nxt = z.chunk(2)
        return info_nce(self.prior_logits(base, nxt), reduction=self.reduction)

    def summary(self) -> dict:
        """The prior's learned parameters in readable units (empty for the supervised baseline)."""
        return self.prior.summary() if self.prior is not None else {}
