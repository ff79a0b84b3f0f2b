"""The encoder's training-mode forward pass, computed only near the balls: exact, and ~5x faster on CPU.

Why it is exact: a frame is black (exactly 0) except near a ball. conv1 has no bias, so it gives exactly 0
wherever its 3x3 window is black, and after BatchNorm and ReLU every such pixel holds one value k_c per
channel. conv2 of that constant is one value per output channel, except along the image border, where zero
padding drops part of the kernel. So the maps equal a fixed background map everywhere but in the tiles within
2 pixels of a lit pixel. Those tiles are computed with unpadded convolutions on windows carrying a 2-pixel
halo. BatchNorm statistics and each map's row and column mass are the background's closed-form totals plus
the active tiles' differences from it. Autograd runs through all of it. Only the order of summation differs
from the dense pass, so results agree to float rounding (tests/test_fast_path.py). Any frames give the
dense pass's result; mostly black ones give it fast.
"""
import torch
import torch.nn.functional as F

TILE = 8   # pixels; three 32-px balls with their 2-px halo touch ~8% of the 1024 tiles of a 256x256 frame
HALO = 2   # two 3x3 convolutions, each sees 1 pixel further


def applies(encoder, frames: torch.Tensor) -> bool:
    """The encoder as built (no conv bias) on uint8 frames whose sides are a multiple of TILE."""
    h, w = frames.shape[-2:]
    return (frames.dtype == torch.uint8 and h % TILE == 0 and w % TILE == 0
            and encoder.conv1.bias is None and encoder.conv2.bias is None)


def _active_tiles(frames: torch.Tensor) -> tuple:
    """(frame, tile row, tile column) of every tile with a lit pixel within HALO of it."""
    lit = F.pad(frames.amax(dim=1), (HALO,) * 4)  # (B, H + 4, W + 4)
    size = TILE + 2 * HALO
    near = lit.unfold(1, size, TILE).amax(-1).unfold(2, size, TILE).amax(-1)  # max over each tile's window
    return near.nonzero(as_tuple=True)


def _windows(frames: torch.Tensor, size: int, b, ty, tx) -> torch.Tensor:
    """(n, C, size, size): the windows of a batch at tiles (b, ty, tx), stepping by TILE."""
    return frames.unfold(-2, size, TILE).unfold(-2, size, TILE)[b, :, ty, tx]


def _channel(v: torch.Tensor) -> torch.Tensor:
    return v.view(-1, 1, 1)  # broadcasts over (C, H, W) and (n, C, H, W) alike


class Background:
    """A per-channel image that is constant within each of a few pixel classes (image corners, edges and
    interior), held as the classes' values (C, R, K) with row and column classes per pixel."""

    def __init__(self, values: torch.Tensor, row_class: torch.Tensor, col_class: torch.Tensor):
        self.values, self.row_class, self.col_class = values, row_class, col_class
        # Pixels pick their class's value by one-hot products, not indexing: indexing's backward adds into
        # the few class values from many threads at once, in an order that changes from run to run.
        self.row_onehot = F.one_hot(row_class, values.shape[1]).to(values.dtype)  # (H, R)
        self.col_onehot = F.one_hot(col_class, values.shape[2]).to(values.dtype)  # (W, K)
        self.row_count, self.col_count = self.row_onehot.sum(0), self.col_onehot.sum(0)

    def map(self, f) -> "Background":
        return Background(f(self.values), self.row_class, self.col_class)

    def pixel_counts(self) -> torch.Tensor:
        """(R, K): how many pixels of one image fall in each class."""
        return self.row_count[:, None] * self.col_count[None, :]

    def tile_counts(self, ty, tx) -> torch.Tensor:
        """(R, K): how many pixels of the active tiles, all together, fall in each class."""
        rows = self._tile_onehot(self.row_onehot, ty).sum(1)  # (n, R)
        cols = self._tile_onehot(self.col_onehot, tx).sum(1)  # (n, K)
        return rows.T @ cols

    @staticmethod
    def _tile_onehot(onehot: torch.Tensor, tile: torch.Tensor) -> torch.Tensor:
        """(n, TILE, classes): the one-hot classes of the pixels of each active tile along one axis."""
        return onehot.view(-1, TILE, onehot.shape[1])[tile]

    def windows(self, ty, tx) -> torch.Tensor:
        """(n, C, TILE, TILE): the image at the active tiles."""
        rows, cols = self._tile_onehot(self.row_onehot, ty), self._tile_onehot(self.col_onehot, tx)
        return torch.einsum("nir,crk,njk->ncij", rows, self.values, cols)

    def col_mass(self) -> torch.Tensor:
        """(C, W): each column's total."""
        return (self.values * self.row_count[:, None]).sum(1) @ self.col_onehot.T

    def row_mass(self) -> torch.Tensor:
        """(C, H): each row's total."""
        return (self.values * self.col_count).sum(2) @ self.row_onehot.T


def _batch_norm_stats(bn, frames: int, background: Background, ty, tx, tiles) -> tuple:
    """Training-mode BatchNorm statistics of `frames` frames equal to `background` except at the active
    tiles (ty, tx), which hold `tiles` (n, C, TILE, TILE).

    Returns (mean, scale) per channel and updates the running statistics as nn.BatchNorm2d does. In eval mode
    BatchNorm normalises with its running statistics, which need no pass over the pixels.
    """
    if not bn.training:
        return bn.running_mean, torch.rsqrt(bn.running_var + bn.eps) * bn.weight
    background_pixels = frames * background.pixel_counts() - background.tile_counts(ty, tx)

    def total(f):
        return (f(background.values) * background_pixels).sum((1, 2)) + f(tiles).sum((0, 2, 3))

    count = frames * len(background.row_class) * len(background.col_class)
    mean = total(lambda x: x) / count
    var = total(lambda x: (x - _channel(mean)) ** 2) / count  # centred, as the dense pass computes it
    with torch.no_grad():
        bn.num_batches_tracked += 1
        # momentum None is nn.BatchNorm's cumulative average (rpm evaluate calibrates a random encoder so)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        bn.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        bn.running_var.mul_(1 - factor).add_(var * count / (count - 1), alpha=factor)
    return mean, torch.rsqrt(var + bn.eps) * bn.weight


def _normalise(bn, x: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (x - _channel(mean)) * _channel(scale) + _channel(bn.bias)


def _border_classes(n: int, device) -> torch.Tensor:
    """For each of n pixels along an axis: 0 for the first, 2 for the last, 1 in between."""
    index = torch.ones(n, dtype=torch.long, device=device)
    index[0], index[-1] = 0, 2
    return index


def _inside(start: torch.Tensor, size: int, n: int) -> torch.Tensor:
    """(n_tiles, size): whether pixel start + i lies inside an axis of n pixels."""
    position = start[:, None] + torch.arange(size, device=start.device)
    return (position >= 0) & (position < n)


def _marginal(background, tile_sums, frame, tile, n_frames: int) -> torch.Tensor:
    """(B, M, L): the background's mass along an axis (M, L), plus each active tile's difference from it
    (n, M, TILE) added at its frame and tile position along that axis."""
    m, length = background.shape
    n_tiles = length // TILE
    delta = tile_sums.new_zeros(n_frames * n_tiles, m, TILE).index_add(0, frame * n_tiles + tile, tile_sums)
    return background + delta.view(n_frames, n_tiles, m, TILE).transpose(1, 2).reshape(n_frames, m, length)


def feature_marginals(encoder, frames: torch.Tensor) -> tuple:
    """uint8 (B, 3, H, W) frames -> the maps' column and row mass, (B, M, W) and (B, M, H), in training or eval
    mode."""
    n_frames, _, h, w = frames.shape
    b, ty, tx = _active_tiles(frames)
    x = _windows(F.pad(frames, (HALO,) * 4), TILE + 2 * HALO, b, ty, tx).to(torch.float32).div_(255.0)

    # Layer 1. conv1 is exactly 0 off the active tiles: its background is 0 everywhere, one class.
    y1 = F.conv2d(x, encoder.conv1.weight)  # (n, C1, TILE + 2, TILE + 2): each tile and a 1-px ring around it
    device = frames.device
    zero = Background(y1.new_zeros(y1.shape[1], 1, 1), torch.zeros(h, dtype=torch.long, device=device),
                      torch.zeros(w, dtype=torch.long, device=device))
    mean1, scale1 = _batch_norm_stats(encoder.bn1, n_frames, zero, ty, tx, y1[:, :, 1:-1, 1:-1])
    a1 = torch.relu(_normalise(encoder.bn1, y1, mean1, scale1))
    # conv2 pads with zeros: ring pixels outside the image must read 0, not the background value.
    ring = TILE + 2
    inside = _inside(ty * TILE - 1, ring, h)[:, :, None] & _inside(tx * TILE - 1, ring, w)[:, None, :]
    y2 = F.conv2d(a1 * inside[:, None], encoder.conv2.weight)  # (n, M, TILE, TILE)

    # Layer 2's background: conv2 of the constant relu(bn1(0)). A 3x3 image holds its 9 values (corners,
    # edges, interior), the classes of an H x W image's pixels.
    k = torch.relu(_normalise(encoder.bn1, zero.values, mean1, scale1))
    background = Background(F.conv2d(k.expand(1, -1, 3, 3), encoder.conv2.weight, padding=1)[0],
                            _border_classes(h, device), _border_classes(w, device))
    mean2, scale2 = _batch_norm_stats(encoder.bn2, n_frames, background, ty, tx, y2)
    maps = background.map(lambda v: torch.sigmoid(_normalise(encoder.bn2, v, mean2, scale2)))
    difference = torch.sigmoid(_normalise(encoder.bn2, y2, mean2, scale2)) - maps.windows(ty, tx)
    col_mass = _marginal(maps.col_mass(), difference.sum(2), b, tx, n_frames)
    row_mass = _marginal(maps.row_mass(), difference.sum(3), b, ty, n_frames)
    return col_mass, row_mass
