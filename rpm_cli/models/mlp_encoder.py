"""`encoder=mlp`: a plain MLP from a vector observation to latent_dim numbers (the anchor's encoder, smaller:
Zimmermann et al. 2021 train 6 layers of up to 50·d units for 10^5 steps on a GPU; rpm's default fits a 2-core
run of a few minutes)."""
import math

import torch
from torch import nn

from rpm_cli.domains import integer
from rpm_cli.errors import UserError
from rpm_cli.models.encoder_base import Encoder

FLOAT = 4
LEAKY_SLOPE = 0.2  # as the mixing the encoder inverts


class MLPEncoder(Encoder):
    name = "mlp"
    reads = "vector"
    keys = {"hidden": integer(1, 4096), "layers": integer(0, 16), "latent_dim": integer(1, 256)}

    def __init__(self, hidden: int, layers: int, latent_dim: int, dataset=None, in_dim: int | None = None):
        super().__init__()
        if dataset is not None:
            in_dim = math.prod(dataset.observation_shape)
        if in_dim is None:
            raise UserError("encoder=mlp needs the dataset's observation length (built through models/build.py)")
        widths = [in_dim] + [hidden] * layers
        blocks = []
        for a, b in zip(widths, widths[1:]):
            blocks += [nn.Linear(a, b), nn.LeakyReLU(LEAKY_SLOPE)]
        self.net = nn.Sequential(*blocks, nn.Linear(widths[-1], latent_dim))
        self.out_dim = latent_dim

    @property
    def latent_dim(self) -> int:
        return self.out_dim

    @classmethod
    def memory(cls, cfg) -> dict[str, int]:
        e, t = cfg.encoder, cfg.trainer
        per_row = (e.hidden * e.layers * 2 + e.latent_dim) * FLOAT  # activations kept for backward, and gradients
        return {"training step": 2 * (2 * t.batch_size) * per_row}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(torch.float32))
