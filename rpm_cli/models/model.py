"""What a run trains: the encoder plus what its objective holds (a prior f_θ, a linear head, a posterior...)."""
import torch
from omegaconf import DictConfig

from rpm_cli.data.build import build_dataset
from rpm_cli.models.build import build_encoder
from rpm_cli.models.objectives import build_objective


class Model(torch.nn.Module):
    def __init__(self, cfg: DictConfig, dataset=None):
        super().__init__()
        dataset = dataset if dataset is not None else build_dataset(cfg.data)
        self.objective = build_objective(cfg.objective, reduction=cfg.trainer.loss_reduction)
        # Built in this order from one seed, so a run's initial weights follow from its seed alone: the
        # encoder, then the objective's parts (a prior, a head, ...) under their names in checkpoints.
        self.encoder = build_encoder(cfg.encoder, dataset)
        dim = self.encoder.latent_dim
        # f_θ sees a * z + b (the encoder's latent units); its lengths are configured in the dataset's length
        # unit (pixels for images: length_unit / a of them per latent unit).
        self.length_unit = dataset.length_unit
        self.latent_a, self.latent_b = self.encoder.latent_affine(self.length_unit)
        self.prior = self.head = None
        parts = self.objective.parts(dim, dataset, cfg.get("prior"), prior_scale=self.length_unit / self.latent_a)
        for name, module in parts.items():
            setattr(self, name, module)
        self.separate_batchnorm = cfg.trainer.batchnorm_batch == "separate"

    def prior_units(self, z: torch.Tensor) -> torch.Tensor:
        """Encoder latents in the units f_θ sees."""
        if (self.latent_a, self.latent_b) != (1.0, 0.0):
            return z * self.latent_a + self.latent_b
        return z

    def prior_logits(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
        """log f_θ(z_i, z'_j) for encoder latents (image units for images)."""
        return self.prior(self.prior_units(z), self.prior_units(z_next))

    def encode_pairs(self, observations) -> torch.Tensor:
        """z of 2B observations; first and second halves in one BatchNorm batch, or in one each
        (trainer.batchnorm_batch)."""
        if self.separate_batchnorm:
            return torch.cat([self.encoder(half) for half in observations.chunk(2)])
        return self.encoder(observations)

    def loss_terms(self, observations, latents: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """(loss, the objective's per-batch terms) of observations of 2B: B pairs' first observations then
        their B second ones; latents (2B, ...) their ground truth in length units (read by the supervised
        baseline only)."""
        return self.objective.loss_terms(self, self.encode_pairs(observations), latents)

    def loss(self, observations, latents: torch.Tensor) -> torch.Tensor:
        return self.loss_terms(observations, latents)[0]

    def summary(self) -> dict:
        """Learned parameters in readable units: the prior's, then the objective's own."""
        return {**(self.prior.summary() if self.prior is not None else {}), **self.objective.summary(self)}
