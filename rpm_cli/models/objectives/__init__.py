"""Training objectives: plug-in classes selected by the `_target_` of configs/objective/<name>.yaml
(base.Objective has the interface). Adding one is one class here and one YAML."""
from rpm_cli.models.objectives.base import Objective, require_prior
from rpm_cli.models.objectives.infonce import InfoNCE
from rpm_cli.models.objectives.rpm import RPM
from rpm_cli.models.objectives.supervised import Supervised
from rpm_cli.plugins import build, plugin_class

REGISTRY: dict[str, type[Objective]] = {cls.name: cls for cls in (InfoNCE, Supervised, RPM)}
EXAMPLE = "rpm_cli.models.objectives.InfoNCE"


def objective_class(objective_cfg) -> type[Objective]:
    return plugin_class("objective", objective_cfg, Objective, REGISTRY, EXAMPLE)[0]


def build_objective(objective_cfg, reduction: str) -> Objective:
    """The Objective an `objective:` config names; `reduction` (trainer.loss_reduction) comes from the trainer."""
    return build("objective", objective_cfg, Objective, REGISTRY, EXAMPLE, reduction=reduction)


__all__ = ["Objective", "InfoNCE", "Supervised", "RPM", "REGISTRY", "build_objective", "objective_class",
           "require_prior"]
