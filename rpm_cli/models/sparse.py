"""The encoder's forward pass computed only near the balls: exact, and ~10x faster than the dense pass on CPU.

Why it is exact: a frame is black (exactly 0) except near a ball. conv1 has no bias, so it gives exactly 0
wherever its 3x3 window is black, and after BatchNorm and ReLU every such pixel holds one value k_c per
channel. conv2 of that constant is one value per output channel, except along the image border, where zero
padding drops part of the kernel. So the maps equal a fixed background map everywhere but in the 2x2 tiles
within 2 pixels of a lit pixel (the active tiles). BatchNorm statistics and each map's row and column mass are
the background's closed-form totals plus the active tiles' differences from it. Autograd runs through all of
it. Only the order of summation differs from the dense pass, so results agree to float rounding
(tests/test_fast_path.py). Any frames give the dense pass's result; mostly black ones give it fast.

Why crops: the active tiles are computed inside square crops of 20x20 tiles, one per ball as a rule, each
with a 2-pixel halo. Convolutions over a few hundred 44x44 crops run ~2x faster than over thousands of small
windows, one per tile, and the halo costs far less (measured; laying crops side by side in wider images
gained nothing). Each active tile is owned by exactly one crop (the first that covers it); the rest of a crop
is computed but not counted.

Tiles of 2 pixels with rpm's kernels (encoder.kernels=native, native.py): a crop then fits a ball more tightly
than with 8-pixel ones (5,900 pixels a frame at paper size against 8,900), and with those kernels the step's
cost follows the pixels: 53 against 73 ms a step on one thread; 1-pixel tiles saved a little more a step but
took 2.7x as long to find a video's crops (measured). encoder.kernels=torch takes torch's operations on
8-pixel tiles: the arithmetic of every run trained before rpm had its kernels, which it gives back bit for bit.
"""
import math
from collections import OrderedDict
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from rpm_cli.models import fused, native

TILE = {"native": 2, "torch": 8}  # pixels a tile, by encoder.kernels
HALO = 2    # two 3x3 convolutions, each sees 1 pixel further


def crop_tiles(ball_diameter: int, tile: int) -> int:
    """Crop side in tiles that holds one ball of this diameter with its antialiased edge and halo, wherever
    the ball sits relative to the tile grid. Any side gives the same numbers; this one is fastest."""
    return math.ceil((ball_diameter + 2 + 2 * HALO) / tile) + 1


def frames_fit(frames: torch.Tensor, tile: int) -> bool:
    """uint8 frames whose sides are a multiple of the tile."""
    h, w = frames.shape[-2:]
    return frames.dtype == torch.uint8 and h % tile == 0 and w % tile == 0


def applies(encoder, frames: torch.Tensor) -> bool:
    """The encoder as built (no conv bias) on frames that fit."""
    return frames_fit(frames, encoder.tile) and encoder.conv1.bias is None and encoder.conv2.bias is None


def active_tiles(frames: torch.Tensor, tile: int) -> torch.Tensor:
    """(B, H / tile, W / tile) bool: tiles with a lit pixel within HALO of them."""
    lit = F.pad(frames.amax(dim=1), (HALO,) * 4)  # (B, H + 4, W + 4)
    size = tile + 2 * HALO
    return lit.unfold(1, size, tile).amax(-1).unfold(2, size, tile).amax(-1) > 0


def place_crops(active: torch.Tensor, side: int) -> tuple:
    """Cover every active tile with crops of side x side tiles inside the image.

    Round after round, each frame with tiles left takes one crop: its top row is that of the frame's first
    uncovered tile (row-major, so the top of a ball), centred on the run of uncovered tiles starting there.
    Returns (frame, top, left) per crop and (n, side, side) bool: the tiles each crop owns (active, and
    covered by no earlier crop).
    """
    n_frames, ty, tx = active.shape
    remaining = active.clone()
    columns, steps = torch.arange(tx), torch.arange(side)
    crops = []
    while True:
        frame = remaining.flatten(1).any(1).nonzero().squeeze(1)
        if not len(frame):
            break
        left_over = remaining[frame]
        first = left_over.flatten(1).to(torch.uint8).argmax(1)  # argmax returns the first maximum
        row, col = first // tx, first % tx
        gaps = ~left_over[torch.arange(len(frame)), row] & (columns >= col[:, None])
        run_end = torch.where(gaps.any(1), gaps.to(torch.uint8).argmax(1), torch.full_like(col, tx))
        left = col + (run_end - col - side + 1).div(2, rounding_mode="floor")
        left = torch.minimum(torch.maximum(left, col - side + 1), col).clamp(0, tx - side)
        top = row.clamp(max=ty - side)
        rows, cols = top[:, None] + steps, left[:, None] + steps  # (k, side)
        owned = left_over[torch.arange(len(frame))[:, None, None], rows[:, :, None], cols[:, None, :]]
        remaining[frame[:, None, None], rows[:, :, None], cols[:, None, :]] = False
        crops.append((frame, top, left, owned))
    if not crops:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty, empty, torch.zeros(0, side, side, dtype=torch.bool)
    return tuple(torch.cat(parts) for parts in zip(*crops))


def _channel(v: torch.Tensor) -> torch.Tensor:
    return v.view(-1, 1, 1)  # broadcasts over (C, H, W) and (n, C, H, W) alike


def _border_classes(n: int, device) -> torch.Tensor:
    """For each of n pixels along an axis: 0 for the first, 2 for the last, 1 in between."""
    index = torch.ones(n, dtype=torch.long, device=device)
    index[0], index[-1] = 0, 2
    return index


class Background:
    """conv2 of a constant image: per channel, one value per pixel class (corner, edge or interior), held
    as the classes' values (C, 3, 3) with row and column classes per pixel."""

    def __init__(self, values: torch.Tensor, height: int, width: int):
        self.values = values
        # Pixels pick their class's value by one-hot products, not indexing: indexing's backward adds into
        # the few class values from many threads at once, in an order that changes from run to run.
        self.row_onehot = F.one_hot(_border_classes(height, values.device), 3).to(values.dtype)  # (H, 3)
        self.col_onehot = F.one_hot(_border_classes(width, values.device), 3).to(values.dtype)  # (W, 3)
        self.row_count, self.col_count = self.row_onehot.sum(0), self.col_onehot.sum(0)

    def map(self, f) -> "Background":
        out = Background.__new__(Background)
        out.__dict__.update(self.__dict__, values=f(self.values))
        return out

    def pixel_counts(self) -> torch.Tensor:
        """(3, 3): how many pixels of one image fall in each class."""
        return self.row_count[:, None] * self.col_count[None, :]

    def windows(self, top_px, left_px, side: int) -> torch.Tensor:
        """(n, C, side, side): the image in the squares with these top-left pixels (encoder.kernels=torch; rpm's
        kernels read each pixel's class instead, Crops.row_class and col_class)."""
        steps = torch.arange(side, device=top_px.device)
        rows, cols = self.row_onehot[top_px[:, None] + steps], self.col_onehot[left_px[:, None] + steps]
        return torch.einsum("nir,crk,njk->ncij", rows, self.values, cols)

    def col_mass(self) -> torch.Tensor:
        """(C, W): each column's total."""
        return (self.values * self.row_count[:, None]).sum(1) @ self.col_onehot.T

    def row_mass(self) -> torch.Tensor:
        """(C, H): each row's total."""
        return (self.values * self.col_count).sum(2) @ self.row_onehot.T


def _update_running_stats(bn, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
    with torch.no_grad():
        bn.num_batches_tracked += 1
        # momentum None is nn.BatchNorm's cumulative average (rpm evaluate calibrates a random encoder so)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        bn.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        bn.running_var.mul_(1 - factor).add_(var * count / (count - 1), alpha=factor)


def _affine(bn, mean: torch.Tensor, var: torch.Tensor) -> tuple:
    """BatchNorm as y * scale + shift per channel."""
    scale = torch.rsqrt(var + bn.eps) * bn.weight
    return scale, bn.bias - mean * scale


def _layer_stats(bn, y: torch.Tensor, own: torch.Tensor, count: int, background: tuple, kernels: bool) -> tuple:
    """Training-mode BatchNorm (scale, shift) of `count` pixels per channel: `y` where `own` is 1, and
    elsewhere the background (values (C, 3, 3), pixels per class (3, 3)).
    Updates the running statistics as nn.BatchNorm2d does. Eval mode uses the running statistics."""
    if not bn.training:
        return _affine(bn, bn.running_mean, bn.running_var)
    # Moments about a fixed per-channel shift (the background's interior value, held constant): the same
    # mean and centred variance, without cancellation when the background dominates.
    values, pixels = background
    shift = values[:, 1, 1].detach()
    total, squares = fused.MaskedMoments.apply(y, own, shift, kernels)
    centred = values - _channel(shift)
    total = total + (centred * pixels).sum((1, 2))
    squares = squares + (centred ** 2 * pixels).sum((1, 2))
    mean_shifted = total / count
    var = squares / count - mean_shifted ** 2
    mean = mean_shifted + shift
    _update_running_stats(bn, mean.detach(), var.detach(), count)
    return _affine(bn, mean, var)


@dataclass
class Crops:
    """A batch of frames as the crops that cover their active tiles: all feature_marginals reads."""
    n_frames: int
    height: int
    width: int
    tile: int                   # pixels
    frame: torch.Tensor         # (n,) the batch position of each crop's frame, ascending
    top: torch.Tensor           # (n,) in tiles
    left: torch.Tensor          # (n,) in tiles
    owned: torch.Tensor         # (n, side, side) bool: the tiles each crop counts
    pixels: torch.Tensor        # (n, 3, side * tile + 2 * HALO, ...) uint8: each crop with its halo
    own1: torch.Tensor          # (n, 1, window - 2, ...) float 1 or 0: the pixels each crop owns, at conv1's
    own2: torch.Tensor          # (n, 1, window - 4, ...) and conv2's outputs
    outside1: torch.Tensor      # (n, 1, window - 2, ...) float 1 where conv1's output lies outside the image
    row_class: torch.Tensor     # (n, window - 4) uint8: the border class of each row of conv2's output
    col_class: torch.Tensor     # (n, window - 4) uint8: and of each column (see Background)
    col_weights: torch.Tensor   # (n, window - 4, 9): per column, the owned pixels in each (row, column) class
    row_weights: torch.Tensor   # (n, window - 4, 9): per row, the same (fused.SigmoidClassDifferenceSums)

    def chunk(self, parts: int) -> list:
        """The batch split into `parts` consecutive groups of frames, as torch.chunk splits frames."""
        per = -(-self.n_frames // parts)
        out = []
        for start in range(0, self.n_frames, per):
            keep = ((self.frame >= start) & (self.frame < start + per)).nonzero().squeeze(1)
            out.append(replace(self, n_frames=min(per, self.n_frames - start), frame=self.frame[keep] - start,
                               **{name: getattr(self, name).index_select(0, keep) for name in PER_CROP}))
        return out


PER_CROP = ("top", "left", "owned", "pixels", "own1", "own2", "outside1", "row_class", "col_class", "col_weights",
            "row_weights")  # Crops' fields with one entry per crop


def _crop_constants(owned, top, left, height: int, width: int, tile: int) -> tuple:
    """Crops' own1, own2, outside1, row_class, col_class, col_weights and row_weights: found once with the crops,
    so that no training step builds them."""
    own = F.pad(owned.repeat_interleave(tile, 1).repeat_interleave(tile, 2), (HALO,) * 4)[:, None].float()
    steps = torch.arange(own.shape[-1], device=own.device) - HALO
    rows, cols = top[:, None] * tile + steps, left[:, None] * tile + steps
    inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
    own1, own2 = own[..., 1:-1, 1:-1].contiguous(), own[..., 2:-2, 2:-2].contiguous()
    # conv2's output pixel (i, j) of a crop lies at image pixel (top + i, left + j), always inside the image.
    row_class = _border_classes(height, own.device)[rows[:, HALO:-HALO]].to(torch.uint8)
    col_class = _border_classes(width, own.device)[cols[:, HALO:-HALO]].to(torch.uint8)
    return (own1, own2, (~inside[:, None, 1:-1, 1:-1]).float(), row_class, col_class,
            *class_weights(own2, row_class, col_class))


def class_weights(own: torch.Tensor, row_class: torch.Tensor, col_class: torch.Tensor) -> tuple:
    """(n, 1, s, s) owned pixels and their uint8 (n, s) row and column classes -> (n, s, 9) each: per column,
    and per row, the owned pixels in each class (row class r, column class k) at r * 3 + k."""
    row_onehot, col_onehot = F.one_hot(row_class.long(), 3).float(), F.one_hot(col_class.long(), 3).float()
    per_col = torch.einsum("nij,nir->njr", own[:, 0], row_onehot)  # (n, s, 3): column j's owned pixels per row class
    per_row = torch.einsum("nij,njk->nik", own[:, 0], col_onehot)  # (n, s, 3): row i's per column class
    col_weights = (per_col[..., :, None] * col_onehot[..., None, :]).flatten(2)
    row_weights = (row_onehot[..., :, None] * per_row[..., None, :]).flatten(2)
    return col_weights, row_weights


def crops_of(frames: torch.Tensor, side: int, tile: int) -> Crops:
    """uint8 (B, 3, H, W) frames -> their Crops (crop side in tiles of `tile` pixels, at most the frame's)."""
    n_frames, _, h, w = frames.shape
    side = min(side, h // tile, w // tile)
    frame, top, left, owned = place_crops(active_tiles(frames, tile).cpu(), side)
    order = torch.sort(frame, stable=True).indices  # by frame, so that a batch can be split (Crops.chunk)
    frame, top, left, owned = (t[order].to(frames.device) for t in (frame, top, left, owned))
    window = side * tile + 2 * HALO
    pixels = F.pad(frames, (HALO,) * 4).unfold(2, window, tile).unfold(3, window, tile)[frame, :, top, left]
    return Crops(n_frames, h, w, tile, frame, top, left, owned, pixels, *_crop_constants(owned, top, left, h, w, tile))


class CropIndex:
    """A whole video's crops, found once; `batch(index)` gathers those of some frames, as crops_of(frames[index])
    would find them (crops are placed frame by frame). Training uses it so that no step looks at black pixels.
    """

    def __init__(self, frames: torch.Tensor, side: int, tile: int, chunk: int = 100):
        parts = [crops_of(frames[i:i + chunk], side, tile) for i in range(0, len(frames), chunk)]
        self.height, self.width, self.tile = *frames.shape[-2:], tile
        self.frame = torch.cat([p.frame + i * chunk for i, p in enumerate(parts)])
        self.per_crop = {name: torch.cat([getattr(p, name) for p in parts]) for name in PER_CROP}
        self.count = torch.bincount(self.frame, minlength=len(frames))
        self.start = torch.cumsum(self.count, 0) - self.count

    def batch(self, index: torch.Tensor) -> Crops:
        index = index.to(self.count.device)
        count = self.count[index]
        position = torch.repeat_interleave(torch.arange(len(index), device=index.device), count)
        ids = self.start[index][position] + torch.arange(len(position), device=index.device) - (
            torch.cumsum(count, 0) - count)[position]
        # index_select, not indexing: ~6x faster for these (measured), the same values
        return Crops(len(index), self.height, self.width, self.tile, position,
                     **{name: values.index_select(0, ids) for name, values in self.per_crop.items()})


_INDEXES: "OrderedDict[tuple, tuple]" = OrderedDict()  # (memory, shape, side, tile) -> (frames, CropIndex)


def crop_index(frames: torch.Tensor, side: int, tile: int) -> CropIndex:
    """The CropIndex of a video, kept for the last few videos: evaluation encodes one video with two encoders
    (and calibrates one), and a sweep's runs share the validation and test videos. The kept entry holds the
    frames, so their memory, the key, cannot be reused by another video while it is kept."""
    key = (frames.data_ptr(), tuple(frames.shape), frames.dtype, side, tile)
    if key not in _INDEXES:
        _INDEXES[key] = (frames, CropIndex(frames, side, tile))
        while len(_INDEXES) > 4:
            _INDEXES.popitem(last=False)
    _INDEXES.move_to_end(key)
    return _INDEXES[key][1]


def _second_layer(encoder, crops: Crops) -> tuple:
    """conv2's pre-activations on the crops, with what turns them into maps: (y2 (n, M, size, size), the
    last BatchNorm's scale and shift (M,), the maps' background (a Background of the maps' values), the pixels
    each crop owns (n, 1, size, size)). Training mode updates both BatchNorms' running statistics."""
    n_frames, h, w = crops.n_frames, crops.height, crops.width
    x = crops.pixels.to(torch.float32).div_(255.0)  # (n, 3, window, window)
    kernels = encoder.kernels == "native"
    count = n_frames * h * w

    # Layer 1: conv1 is exactly 0 off the active tiles, so its background is 0.
    y1 = native.conv3x3(x, encoder.conv1.weight, kernels)  # pixel (i, j) of y1 sits at input (i + 1, j + 1)
    # conv2 pads with zeros: pixels outside the image must read 0, not the background value (crops.outside1).
    bn1 = encoder.bn1
    if bn1.training:
        a1, shift1, mean1, var1 = fused.BatchNormReLU.apply(y1, bn1.weight, bn1.bias, crops.own1, crops.outside1,
                                                            count, bn1.eps, kernels)
        _update_running_stats(bn1, mean1, var1, count)
    else:
        scale1, shift1 = _affine(bn1, bn1.running_mean, bn1.running_var)
        # In place: y1 is not needed again, and the same operations in the same order give the same floats
        # without three more tensors the size of y1 (without rpm's allocator settings each costs page faults).
        a1 = y1.mul_(_channel(scale1)).add_(_channel(shift1)).relu_().masked_fill_(crops.outside1.bool(), 0.0)
    y2 = native.conv3x3(a1, encoder.conv2.weight, kernels)  # (n, M, size, size): (i, j) sits at input (i + 2, j + 2)

    # Layer 2's background: conv2 of the constant relu(bn1(0)); a 3x3 image holds its 9 pixel classes.
    k = torch.relu(shift1)
    background = Background(F.conv2d(k.view(1, -1, 1, 1).expand(1, -1, 3, 3), encoder.conv2.weight,
                                     padding=1)[0], h, w)
    # The crops' owned pixels per border class (whole numbers: exact in float32 up to 2^24 pixels a batch)
    pixels = n_frames * background.pixel_counts() - crops.col_weights.sum((0, 1)).view(3, 3)
    scale2, shift2 = _layer_stats(encoder.bn2, y2, crops.own2, count, (background.values, pixels), kernels)
    maps = background.map(lambda v: torch.sigmoid(v * _channel(scale2) + _channel(shift2)))
    return y2, scale2, shift2, maps, crops.own2


def feature_marginals(encoder, frames, side: int | None = None) -> tuple:
    """uint8 (B, 3, H, W) frames, or their Crops -> the maps' column and row mass, (B, M, W) and (B, M, H), in
    training or eval mode. `side`: crop side in tiles (encoder.crop_tiles by default)."""
    crops = frames if isinstance(frames, Crops) else crops_of(frames, side or encoder.crop_tiles, encoder.tile)
    y2, scale2, shift2, maps, own2 = _second_layer(encoder, crops)
    top, left = crops.top * crops.tile, crops.left * crops.tile
    if native.usable(encoder.kernels == "native", y2, own2):  # each pixel's background read by its border class
        cols_sum, rows_sum = fused.SigmoidClassDifferenceSums.apply(
            y2, scale2, shift2, maps.values, crops.row_class, crops.col_class, crops.col_weights, crops.row_weights,
            own2)
    else:
        crop_background = maps.windows(top, left, y2.shape[-1])
        cols_sum, rows_sum = fused.SigmoidDifferenceSums.apply(y2, scale2, shift2, crop_background, own2)
    col_mass = _scatter(maps.col_mass(), cols_sum, crops.frame, left, crops.n_frames)
    row_mass = _scatter(maps.row_mass(), rows_sum, crops.frame, top, crops.n_frames)
    return col_mass, row_mass


@torch.no_grad()
def feature_maps(encoder, frames, side: int | None = None) -> torch.Tensor:
    """uint8 (B, 3, H, W) frames, or their Crops -> the maps (B, M, H, W) of an encoder in eval mode, as
    encoder.feature_maps gives them (to float rounding): the background map, with each crop's owned pixels
    written over it."""
    if encoder.training:
        raise ValueError("sparse.feature_maps reads the running statistics: put the encoder in eval mode")
    crops = frames if isinstance(frames, Crops) else crops_of(frames, side or encoder.crop_tiles, encoder.tile)
    y2, scale2, shift2, maps, own2 = _second_layer(encoder, crops)
    full = torch.einsum("ir,crk,jk->cij", maps.row_onehot, maps.values, maps.col_onehot)  # (M, H, W)
    full = full[None].repeat(crops.n_frames, 1, 1, 1)
    size = y2.shape[-1]
    steps = torch.arange(size, device=y2.device)
    rows = (crops.top * crops.tile)[:, None] + steps  # (n, size)
    cols = (crops.left * crops.tile)[:, None] + steps
    owned = own2[:, 0].bool()  # (n, size, size)
    crop, i, j = owned.nonzero(as_tuple=True)
    values = torch.sigmoid(y2 * _channel(scale2) + _channel(shift2))  # (n, M, size, size)
    full.permute(0, 2, 3, 1)[crops.frame[crop], rows[crop, i], cols[crop, j]] = values.permute(0, 2, 3, 1)[crop, i, j]
    return full


def _scatter(background: torch.Tensor, crop_sums: torch.Tensor, frame, start, n_frames: int) -> torch.Tensor:
    """(B, M, L): the background's mass along an axis (M, L), plus each crop's sums (n, M, size) added at its
    frame and pixels start .. start + size along that axis."""
    m, length = background.shape
    size = crop_sums.shape[-1]
    index = (frame * length + start)[:, None] + torch.arange(size, device=start.device)
    delta = crop_sums.new_zeros(n_frames * length, m).index_add(0, index.flatten(),
                                                                crop_sums.transpose(1, 2).reshape(-1, m))
    return background + delta.view(n_frames, length, m).transpose(1, 2)
