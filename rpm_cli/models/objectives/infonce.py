"""InfoNCE (App. D): pick each pair's next frame among the batch's next frames, scored by the prior f_θ."""
from rpm_cli.models.objectives.base import Objective
from rpm_cli.models.priors import build_prior
from rpm_cli.objectives import info_nce, info_nce_estimate, negatives


class InfoNCE(Objective):
    name = "infonce"
    has_prior = True
    loss_label = "InfoNCE loss (log N − I_N)"
    loss_axis = "InfoNCE loss"
    chance_is_log_n = True

    def __init__(self, reduction: str = "mean"):
        self.reduction = reduction

    def parts(self, dim, dataset, prior_cfg, prior_scale):
        return {"prior": build_prior(prior_cfg, dim=dim, scale=prior_scale)}

    def loss_terms(self, model, z, latents):
        first, second = z.chunk(2)
        return info_nce(model.prior_logits(first, second), reduction=self.reduction), {}

    def epoch_metrics(self, mean_loss, mean_terms, batch_size):
        # I_N of Eq. 6 with N = B - 1 negatives, from training-mode batches: a finite-batch estimate.
        per_pair = mean_loss / batch_size if self.reduction == "sum" else mean_loss
        return {"infonce_estimate": info_nce_estimate(per_pair, batch_size), "negatives": negatives(batch_size)}
