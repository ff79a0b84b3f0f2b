"""The supervised baseline of Fig. 1C: the encoder plus a linear head, MSE to the true latents. No prior."""
import torch

from rpm_cli.models.objectives.base import Objective


class Supervised(Objective):
    name = "supervised"
    has_prior = False
    loss_label = "supervised MSE loss"
    loss_axis = "MSE loss"

    def __init__(self, reduction: str = "mean"):
        self.reduction = reduction

    def parts(self, dim, dataset, prior_cfg, prior_scale):
        return {"head": torch.nn.Linear(dim, dataset.latent_dim)}

    def loss_terms(self, model, z, latents):
        target = latents.reshape(len(latents), -1) / model.length_unit
        return torch.nn.functional.mse_loss(model.head(z), target, reduction=self.reduction), {}
