"""Build the encoder a config names (a plug-in, rpm_cli/plugins.py), feed it batches, and pick the device."""
import torch

from rpm_cli.errors import UserError
from rpm_cli.models import sparse
from rpm_cli.models.encoder import CentreOfMassEncoder
from rpm_cli.models.encoder_base import Encoder
from rpm_cli.models.mlp_encoder import MLPEncoder
from rpm_cli.plugins import build, plugin_class

REGISTRY: dict[str, type[Encoder]] = {cls.name: cls for cls in (CentreOfMassEncoder, MLPEncoder)}
EXAMPLE = "rpm_cli.models.encoder.CentreOfMassEncoder"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def encoder_class(encoder_cfg) -> type[Encoder]:
    """The class an `encoder:` config names, imported but not built (its checks run from the config alone)."""
    return plugin_class("encoder", encoder_cfg, Encoder, REGISTRY, EXAMPLE)[0]


def check_reads(cls: type[Encoder], dataset_cls) -> None:
    if cls.reads != dataset_cls.observation:
        fits = [name for name, c in REGISTRY.items() if c.reads == dataset_cls.observation]
        raise UserError(f"encoder={cls.name or cls.__name__} reads {cls.reads}s, but data={dataset_cls.name} gives "
                        f"{dataset_cls.observation}s (encoders that read them: {', '.join(fits) or 'none'})")


def build_encoder(encoder_cfg, dataset) -> Encoder:
    """The encoder an `encoder:` config names, for `dataset`'s observations."""
    check_reads(encoder_class(encoder_cfg), type(dataset))
    return build("encoder", encoder_cfg, Encoder, REGISTRY, EXAMPLE, dataset=dataset)


def batch_source(encoder: Encoder, observations: torch.Tensor):
    """index -> the encoder's input for those observations: their crops, found once for the whole video
    (sparse.CropIndex), when the encoder takes the background-skipping pass; else the observations themselves."""
    if encoder.skip_background and sparse.frames_fit(observations, encoder.tile):
        return sparse.crop_index(observations, encoder.crop_tiles, encoder.tile).batch
    return lambda index: observations[index]
