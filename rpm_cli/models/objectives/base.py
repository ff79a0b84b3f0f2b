"""The interface every training objective implements (`objective=<name>`, configs/objective/<name>.yaml with
`_target_`), so training, evaluation, figures and the report ask the objective instead of testing its name.

An objective is built from its config keys (`objective.<key>`, checked by its constructor in one line). It
says which modules a model holds besides the encoder (`parts`: built in that order from the run's seed, and
stored under those names in checkpoints), the loss of a batch and the per-batch terms it logs, what an epoch's
metrics add, whether it trains an f_θ (then evaluation scores I_N and retrieval, and Fig. 1D/E draws its
P(z'|z)), and how its loss is labelled in pictures.
"""
import abc
from typing import ClassVar

import torch
from torch import nn

from rpm_cli.domains import Domain
from rpm_cli.errors import UserError


class Objective(abc.ABC):
    #: The config's `name`, used to map configs written before objectives had `_target_`.
    name: ClassVar[str] = ""
    #: Trains a prior f_θ: `prior=` must be set (else it must be null), and held-out scores include I_N.
    has_prior: ClassVar[bool] = True
    #: Domains of its config keys (`objective.<key>`), checked by its constructor and listed in the README.
    keys: ClassVar[dict[str, Domain]] = {}
    #: The training loss as pictures name it: the panel's title and its axis.
    loss_label: ClassVar[str] = "loss"
    loss_axis: ClassVar[str] = "loss"
    #: Whether log N (N = B - 1 negatives) is the loss of a critic that scores every candidate alike.
    chance_is_log_n: ClassVar[bool] = False

    @abc.abstractmethod
    def parts(self, dim: int, dataset, prior_cfg, prior_scale: float) -> dict[str, nn.Module]:
        """The modules the model holds besides the encoder, by the attribute name they are stored under.
        `dim` is the encoder's latent size; f_θ sees latents in units of `prior_scale` length units."""

    def check_prior(self, prior) -> None:
        """Refuse, in one line, a prior this objective cannot train (before any work)."""

    @abc.abstractmethod
    def loss_terms(self, model, z: torch.Tensor, latents: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """(loss, {name: scalar tensor}) of one batch: z (2B, dim) holds the B first observations' latents,
        then their second ones; latents (2B, ...) their ground truth in length units."""

    def epoch_metrics(self, mean_loss: float, mean_terms: dict[str, float], batch_size: int) -> dict:
        """What an epoch's metrics add to its mean loss, from that and the mean of each per-batch term."""
        return dict(mean_terms)

    def summary(self, model) -> dict[str, float]:
        """The objective's own learned parameters in readable units, for logs and metrics."""
        return {}


def require_prior(objective: Objective, prior_cfg) -> None:
    """The config's prior matches what the objective trains: set when it has one, null when it has none."""
    if objective.has_prior and prior_cfg is None:
        raise UserError(f"prior must be set with objective={objective.name} (e.g. prior=gaussian)")
    if not objective.has_prior and prior_cfg is not None:
        raise UserError(f"prior must be null with objective={objective.name} (it has no f_θ); "
                        f"got prior {prior_cfg.get('name')!r}")
