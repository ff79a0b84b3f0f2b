"""What a run trains: the encoder plus the prior f_θ (InfoNCE) or a linear head (the supervised baseline)."""
import torch
from omegaconf import DictConfig

from rpm_cli.data.build import build_dataset
from rpm_cli.models.build import build_encoder
from rpm_cli.models.priors import build_prior
from rpm_cli.objectives import info_nce


class Model(torch.nn.Module):
    def __init__(self, cfg: DictConfig, dataset=None):
        super().__init__()
        dataset = dataset if dataset is not None else build_dataset(cfg.data)
        # Built in this order from one seed, so a run's initial weights follow from its seed alone.
        self.encoder = build_encoder(cfg.encoder, dataset)
        self.supervised = cfg.objective.name == "supervised"
        dim = self.encoder.latent_dim
        self.head = torch.nn.Linear(dim, dataset.latent_dim) if self.supervised else None
        # f_θ sees a * z + b (the encoder's latent units); its lengths are configured in the dataset's length
        # unit (pixels for images: length_unit / a of them per latent unit).
        self.length_unit = dataset.length_unit
        self.latent_a, self.latent_b = self.encoder.latent_affine(self.length_unit)
        self.prior = None if self.supervised else build_prior(cfg.prior, dim=dim, scale=self.length_unit / self.latent_a)
        self.reduction = cfg.trainer.loss_reduction
        self.separate_batchnorm = cfg.trainer.batchnorm_batch == "separate"

    def prior_logits(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        """log f_θ(z_i, z'_j) for encoder latents (image units for images)."""
        if (self.latent_a, self.latent_b) != (1.0, 0.0):
            z, z_next = z * self.latent_a + self.latent_b, z_next * self.latent_a + self.latent_b
        return self.prior(z, z_next)

    def encode_pairs(self, observations) -> torch.Tensor:
        """z of 2B observations; first and second halves in one BatchNorm batch, or in one each
        (trainer.batchnorm_batch)."""
        if self.separate_batchnorm:
            return torch.cat([self.encoder(half) for half in observations.chunk(2)])
        return self.encoder(observations)

    def loss(self, observations, latents: torch.Tensor) -> torch.Tensor:
        """observations of 2B: B pairs' first observations then their B second ones; latents (2B, ...) their
        ground truth in length units (read by the supervised baseline only)."""
        z = self.encode_pairs(observations)
        if self.supervised:
            target = latents.reshape(len(latents), -1) / self.length_unit
            return torch.nn.functional.mse_loss(self.head(z), target, reduction=self.reduction)
        first, second = z.chunk(2)
        return info_nce(self.prior_logits(first, second), reduction=self.reduction)

    def summary(self) -> dict:
        """The prior's learned parameters in readable units (empty for the supervised baseline)."""
        return self.prior.summary() if self.prior is not None else {}
