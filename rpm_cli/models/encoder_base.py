"""The interface every encoder implements (`encoder=<name>`, configs/encoder/<name>.yaml with `_target_`).

An encoder maps a batch of observations to latents z (B, latent_dim). It states which observations it reads
("image" or "vector", matched against the dataset's before any work), its config keys' domains (checked
before any work, `encoder.<key>` in every message), what a training step holds in memory, and how f_θ sees
its latents (`latent_affine`). The builder (models/build.py) passes it the dataset, so an encoder reads what
it needs of the world (the image size, an observation's length) from there rather than from more keys.
"""
from typing import ClassVar

import torch
from torch import nn

from rpm_cli.domains import Domain


class Encoder(nn.Module):
    #: The config's `name`, used to map configs written before encoders had `_target_`.
    name: ClassVar[str] = ""
    #: "image" or "vector": the dataset's `observation` must be this.
    reads: ClassVar[str] = ""
    #: Domains of its config keys, checked from the config before anything is built.
    keys: ClassVar[dict[str, Domain]] = {}
    #: Training reads observations through `batch_source`; an encoder may precompute there (sparse crops).
    skip_background: bool = False

    @property
    def latent_dim(self) -> int:
        raise NotImplementedError

    @classmethod
    def memory(cls, cfg) -> dict[str, int]:
        """Bytes of one training step's activations and one evaluation batch, from the config alone."""
        return {}

    def latent_affine(self, length_unit: float) -> tuple[float, float]:
        """(a, b): f_θ sees a * z + b. Vectors pass unchanged."""
        return 1.0, 0.0

    def map_concentration(self, frames) -> torch.Tensor | None:
        """How much of each map's mass lies near its own centre on these observations (M,), for encoders
        whose latents are maps' centres; None for the others (no map health to watch, nothing to re-seed)."""
        return None

    def map_leak(self, frames) -> torch.Tensor | None:
        """How much of each map's mass lies near another map's centre (M,), for encoders whose latents are maps'
        centres; None for the others (no epoch is kept for its maps)."""
        return None

    def reseed_maps(self, maps: list[int], frames, generator: torch.Generator) -> list[tuple]:
        """Draw these maps' own weights afresh; returns (parameter, index) of every slice that changed. An
        encoder without maps (map_concentration None, so training never asks) changes nothing."""
        return []
