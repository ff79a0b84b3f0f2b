"""Config -> Dataset: `data._target_` names the class (rpm_cli/plugins.py), `data.name` maps configs written
before datasets had one."""
from rpm_cli.data.balls_dataset import BallsDataset
from rpm_cli.data.base import Dataset
from rpm_cli.data.clica import ClicaDataset
from rpm_cli.plugins import build, plugin_class

REGISTRY: dict[str, type[Dataset]] = {cls.name: cls for cls in (BallsDataset, ClicaDataset)}
EXAMPLE = "rpm_cli.data.balls_dataset.BallsDataset"


def dataset_class(data_cfg) -> type[Dataset]:
    """The class a `data:` config names, imported but not built (its checks run from the config alone)."""
    return plugin_class("data", data_cfg, Dataset, REGISTRY, EXAMPLE)[0]


def build_dataset(data_cfg) -> Dataset:
    """The dataset a `data:` config names; nothing is generated until a split is asked for."""
    return build("data", data_cfg, Dataset, REGISTRY, EXAMPLE)
