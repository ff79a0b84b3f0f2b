"""The centre-of-mass encoder of Fig. 2.

conv3x3(3->6) + BatchNorm + ReLU, conv3x3(6->3) + BatchNorm + sigmoid, then the centre of mass of each
of the 3 maps. Output z = (x1, y1, x2, y2, x3, y3) in units of the image size: pixel column i has
position (i + 0.5) / W, so z lies in (0, 1) and z * image_size is in the same pixel units as the
generator's ball centres. Convolutions carry no bias: BatchNorm's mean subtraction cancels it.
"""
import math
from typing import ClassVar

import torch
from torch import nn

from rpm_cli.domains import BOOLEAN, Domain, integer, number, one_of
from rpm_cli.models import sparse
from rpm_cli.models.encoder_base import Encoder

MAX_MAPS = 8
FLOAT = 4
IDLE_SHARE = 0.01  # a hidden channel peaking under 1 % of the strongest one's is dead (reseed_maps)
EVAL_BATCH = 100  # frames per forward pass in `rpm evaluate`
# Latent units f_θ sees -> (how many per image size, offset): z in image units (0, 1) becomes z * a + b.
LATENT_UNITS = {"image": (1.0, 0.0), "pixels": (None, 0.0), "signed": (2.0, -1.0)}


def pixel_positions(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    return (torch.arange(n, device=device, dtype=dtype) + 0.5) / n


def _draw_default(weight: torch.Tensor, generator: torch.Generator) -> None:
    """One output filter drawn as nn.Conv2d draws it (kaiming_uniform_ with a = sqrt(5): U(-1/sqrt(fan_in), ...))."""
    bound = 1.0 / weight.numel() ** 0.5
    fresh = torch.rand(weight.shape, generator=generator, dtype=weight.dtype)
    weight.copy_((2 * fresh - 1) * bound)


def _reset_batchnorm(bn: nn.BatchNorm2d, channel: int, shift: float) -> None:
    bn.weight[channel], bn.bias[channel] = 1.0, shift
    bn.running_mean[channel], bn.running_var[channel] = 0.0, 1.0


def centre_of_mass(maps: torch.Tensor) -> torch.Tensor:
    """(B, M, H, W) non-negative maps -> (B, 2M) as (x_1, y_1, ..., x_M, y_M) in units of the image size.

    Each axis' marginal is normalised to 1 and used to average the pixel positions along that axis.
    """
    return centre_from_marginals(maps.sum(dim=2), maps.sum(dim=3))


def centre_from_marginals(cols: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The maps' mass in each column (B, M, W) and row (B, M, H) -> (B, 2M) centres as centre_of_mass."""
    b, m, w = cols.shape
    mass = cols.sum(dim=-1)
    x = (cols * pixel_positions(w, cols.device, cols.dtype)).sum(-1) / mass
    y = (rows * pixel_positions(rows.shape[-1], rows.device, rows.dtype)).sum(-1) / mass
    return torch.stack([x, y], dim=-1).reshape(b, 2 * m)


class CentreOfMassEncoder(Encoder):
    name = "com_cnn"
    reads = "image"
    keys: ClassVar[dict[str, Domain]] = {
        "hidden_channels": integer(1, 256), "n_maps": integer(1, MAX_MAPS), "map_bias_init": number(-50, 50),
        "skip_background": BOOLEAN, "latent_units": one_of(*LATENT_UNITS), "kernels": one_of(*sparse.TILE)}

    def __init__(self, n_maps: int = 3, hidden_channels: int = 6, map_bias_init: float = 0.0,
                 skip_background: bool = True, latent_units: str = "image", kernels: str = "native", dataset=None):
        super().__init__()
        self.kernels, self.tile = kernels, sparse.TILE[kernels]  # the background-skipping pass's arithmetic
        in_channels, crop_tiles = 3, sparse.crop_tiles(32, self.tile)
        if dataset is not None:  # built from a config: the balls' size and background decide the fast pass
            in_channels = dataset.observation_shape[0]
            crop_tiles = sparse.crop_tiles(getattr(dataset, "ball_diameter", 32), self.tile)
            # The background-skipping pass is exact on black frames; other backgrounds take the dense pass.
            skip_background = skip_background and getattr(dataset, "background", None) == "black"
        self.n_maps = n_maps
        self.skip_background = skip_background  # passes compute only near the balls (sparse.py)
        self.crop_tiles = crop_tiles  # the side of sparse.py's crops: speed only, never the numbers
        self.latent_units = latent_units
        self.map_bias_init = map_bias_init
        # A map on one ball holds its mass within a diameter of its centre; one spread over two balls, or
        # settled on the background, does not (map_concentration).
        self.ball_diameter_px = float(getattr(dataset, "ball_diameter", 32))
        self.conv1 = nn.Conv2d(in_channels, hidden_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden_channels)
        self.conv2 = nn.Conv2d(hidden_channels, n_maps, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(n_maps)
        # The shift of the last BatchNorm sets the maps' background level: at 0 (PyTorch's default) the black
        # background sits near sigmoid(0) = 0.5 and outweighs a ball in the centre of mass.
        nn.init.constant_(self.bn2.bias, map_bias_init)

    @property
    def latent_dim(self) -> int:
        return 2 * self.n_maps

    def latent_affine(self, length_unit: float) -> tuple[float, float]:
        """(a, b) such that f_θ sees a * z + b for z in image units (encoder.latent_units)."""
        a, b = LATENT_UNITS[self.latent_units]
        return (float(length_unit) if a is None else a), b

    @classmethod
    def memory(cls, cfg) -> dict[str, int]:
        """Per pixel of a frame in a training step: input (3), conv1/bn1/relu (3 x hidden), conv2/bn2/sigmoid
        (3 x maps), kept for backward and matched by as many gradients; the dense pass, on the high side."""
        e, pixels = cfg.encoder, cfg.data.image_size**2
        per_pixel = (3 + 3 * e.hidden_channels + 3 * e.n_maps) * FLOAT
        return {"training step": 2 * (2 * cfg.trainer.batch_size) * pixels * per_pixel,
                "evaluation batch": EVAL_BATCH * pixels * per_pixel}

    def feature_maps(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) frames -> (B, n_maps, H, W) maps in (0, 1)."""
        x = frames.to(torch.float32).div_(255.0)  # in place: one fewer full-size temporary
        x = torch.relu(self.bn1(self.conv1(x)))
        return torch.sigmoid(self.bn2(self.conv2(x)))

    @torch.no_grad()
    def maps_in_eval(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (F, 3, H, W) frames -> (F, M, H, W) maps with BatchNorm's running statistics, training's state
        untouched: near the balls only when the fast pass applies (~7x faster at paper size, equal to float
        rounding, tests/test_fast_path.py). Map health reads the same frames at every check, so their crops are
        found once (sparse.crop_index)."""
        was_training = self.training
        self.eval()
        try:
            if self.skip_background and sparse.applies(self, frames):
                index = sparse.crop_index(frames, self.crop_tiles, self.tile)
                return sparse.feature_maps(self, index.batch(torch.arange(len(frames), device=frames.device)))
            return self.feature_maps(frames)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def _mass_near_centres(self, frames: torch.Tensor, radius_px: float) -> torch.Tensor:
        """uint8 (F, 3, H, W) frames -> (M, M): [k, j] the mean over frames of the share of map k's mass within
        radius_px of map j's centre of mass. Reads no labels; training's state is untouched."""
        maps = self.maps_in_eval(frames)
        f, m, h, w = maps.shape
        # Sums in double without a double copy of the maps (a third of a reading's time at paper size)
        cols, rows = maps.sum(2, dtype=torch.float64), maps.sum(3, dtype=torch.float64)
        centres = centre_from_marginals(cols, rows).reshape(f, m, 2)
        # Only the box of 2 * ceil(radius) + 2 pixels a side around each centre can lie within the radius: each
        # map's mass is read there (every map against every centre), not over the whole image. The same values to
        # double rounding; a reading on 64 paper-size frames took ~0.14 s instead of ~0.22 s (measured, one thread).
        box_h, box_w = (min(2 * math.ceil(radius_px) + 2, n) for n in (h, w))
        first_col = (centres[..., 0] * w - radius_px).floor().long().clamp(0, w - box_w)  # (F, M)
        first_row = (centres[..., 1] * h - radius_px).floor().long().clamp(0, h - box_h)
        box_cols = first_col[..., None] + torch.arange(box_w, device=maps.device)  # (F, M, box_w)
        box_rows = first_row[..., None] + torch.arange(box_h, device=maps.device)  # (F, M, box_h)
        dx = (pixel_positions(w, centres.device, centres.dtype)[box_cols] - centres[..., 0, None]) * w  # (F, M, box) px
        dy = (pixel_positions(h, centres.device, centres.dtype)[box_rows] - centres[..., 1, None]) * h
        near = (dy[..., :, None] ** 2 + dx[..., None, :] ** 2 < radius_px**2).to(centres.dtype)  # (F, M, box_h, box_w)
        pixels = (box_rows[..., :, None] * w + box_cols[..., None, :]).view(f, 1, -1).expand(f, m, -1)
        kept = maps.view(f, m, h * w).gather(2, pixels).double().view(f, m, m, box_h, box_w)  # map k, centre j's box
        inside = (kept * near[:, None]).sum((3, 4))  # (F, M, M): k, j
        return (inside / cols.sum(-1)[..., None]).mean(0).float()

    def map_concentration(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (F, 3, H, W) frames -> (M,): per map, the mean over frames of the fraction of its mass within
        one ball diameter of its centre of mass. Near 0.85 for a map on one ball at paper size; near 0.2 for a
        map shared by two balls and near 0.05 for one on the background (tuning seeds)."""
        return self._mass_near_centres(frames, self.ball_diameter_px).diagonal()

    def map_leak(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (F, 3, H, W) frames -> (M,): per map, the largest share of its mass within one ball radius of
        another map's centre. A map that tracks its ball but also answers a little to another one's pixels
        (1-3 % of its mass) is pulled towards that ball, by a few px at the video's distances: the error of a
        marginal failure (issue 25, tuning seeds 10-14). Zero with a single map."""
        near = self._mass_near_centres(frames, self.ball_diameter_px / 2)
        others = near * (1 - torch.eye(self.n_maps))
        return others.amax(dim=1)

    @torch.no_grad()
    def reseed_maps(self, maps: list[int], frames: torch.Tensor, generator: torch.Generator) -> list[tuple]:
        """Maps `maps` start again as at initialisation, and so do the idle hidden channels (conv1 channels whose
        peak response on these frames is under IDLE_SHARE of the strongest one's: a ReLU that never fires
        gets no gradient, and without it a ball may have no feature a fresh map could pick up). The healthy
        maps keep their filters, with no weight on a fresh channel, so their outputs change only by what the
        idle channels gave them (under 1 % of the strongest feature); as k-means re-seeds an empty cluster and
        keeps the rest. Returns (parameter, index) of every changed slice."""
        was_training = self.training
        self.eval()
        peak = torch.relu(self.bn1(self.conv1(frames.to(torch.float32) / 255.0))).amax((0, 2, 3))
        self.train(was_training)
        idle = [c for c in range(len(peak)) if peak[c] < IDLE_SHARE * peak.max()]
        changed = []
        for c in idle:
            _draw_default(self.conv1.weight[c], generator)
            _reset_batchnorm(self.bn1, c, shift=0.0)
            self.conv2.weight[:, c] = 0.0
            changed += [(self.conv1.weight, (c,)), (self.bn1.weight, (c,)), (self.bn1.bias, (c,)),
                        (self.conv2.weight, (slice(None), c))]
        for k in maps:
            _draw_default(self.conv2.weight[k], generator)
            _reset_batchnorm(self.bn2, k, shift=self.map_bias_init)
            changed += [(self.conv2.weight, (k,)), (self.bn2.weight, (k,)), (self.bn2.bias, (k,))]
        return changed

    def forward(self, frames) -> torch.Tensor:
        """uint8 (B, 3, H, W) frames, or their sparse.Crops (training's batches) -> (B, 2M) centres."""
        if isinstance(frames, sparse.Crops):
            return centre_from_marginals(*sparse.feature_marginals(self, frames))
        if self.skip_background and sparse.applies(self, frames):
            return centre_from_marginals(*sparse.feature_marginals(self, frames))
        return centre_of_mass(self.feature_maps(frames))
