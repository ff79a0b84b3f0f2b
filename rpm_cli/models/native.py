"""rpm's own CPU kernels (native.c) for the background-skipping pass: its two 3x3 convolutions and the
elementwise stages of fused.py, compiled once per machine.

Why: on a training step's crops oneDNN runs the encoder's thin convolutions (3 -> 6 and 6 -> 3 channels) at
~5 GFLOP/s, and the elementwise stages, as torch operations, pass over the crops' tensors several times each;
together they were most of the step. native.c keeps each row's outputs in vector registers and does each
stage in one or two passes. It is compiled with the C compiler on the PATH (`cc`, or $CC) for this CPU
(-march=native), cached under ~/.cache/rpm (or $XDG_CACHE_HOME/rpm) by a hash of the source, the compiler
and the CPU, and called through ctypes. Its OpenMP runtime is torch's own libgomp, already loaded, so its
loops share torch's threads.

Results do not depend on the thread count: sums over crops are taken CHUNK crops at a time and the chunks
added in order. Without a compiler, off CPU, for other dtypes, or with RPM_NATIVE=0, the callers use torch's
operations instead: the same numbers to float rounding (tests/test_native.py).
"""
import ctypes
import functools
import hashlib
import logging
import math
import os
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("native.c")
FLAGS = ["-O3", "-march=native", "-std=gnu11", "-shared", "-fPIC", "-fopenmp"]
MAX_OUT = 8  # native.c keeps at most 8 output channels in registers
MIN_WIDTH = 10  # and reads rows of at least 8 outputs


def signatures(source: str) -> dict:
    """native.c's exported functions (`int name(...)` at the start of a line: 0, or 1 when out of memory) and
    their ctypes argument types: pointers as addresses, `long` and `int` as such."""
    found = {}
    for name, params in re.findall(r"^int (\w+)\(([^)]*)\)", source, flags=re.M):
        found[name] = [ctypes.c_void_p if "*" in p else ctypes.c_long if p.split()[0] == "long" else ctypes.c_int
                       for p in params.split(",")]
    return found


def wanted() -> bool:
    return os.environ.get("RPM_NATIVE", "1") != "0"


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rpm"


def _cpu() -> str:
    """What -march=native compiles for: the CPU's model and features (x86's and ARM's names for them)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    named = ("model name", "flags", "Features", "CPU implementer", "CPU architecture", "CPU variant", "CPU part")
    return "".join(sorted({ln for ln in lines if ln.startswith(named)}))


def _compile(compiler: str) -> Path:
    """The shared library for this source, compiler and CPU, compiled unless cached."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256("\0".join([SOURCE.read_text(), " ".join(FLAGS), version, _cpu(),
                                    platform.machine()]).encode()).hexdigest()[:16]
    target = _cache_dir() / f"native-{key}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            built = Path(tmp) / target.name
            subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", str(built)], capture_output=True, text=True,
                           check=True)
            os.replace(built, target)  # atomic: a concurrent process finds the whole library or none
        log.debug("compiled %s", target)
    return target


@functools.lru_cache(maxsize=1)
def library():
    """The loaded kernels, or None (RPM_NATIVE=0, no compiler, or anything failing on the way: a compile, the
    cache dir, the load): callers fall back to torch's operations, which are slower, never wrong."""
    compiler = os.environ.get("CC") or "cc"
    if not wanted():
        return None
    if shutil.which(compiler) is None:
        log.info("no C compiler (%s): rpm uses torch's operations, ~2x slower on CPU (README: Performance)", compiler)
        return None
    try:
        lib = ctypes.CDLL(str(_compile(compiler)))
        for name, argtypes in signatures(SOURCE.read_text()).items():
            getattr(lib, name).argtypes = argtypes
            getattr(lib, name).restype = ctypes.c_int
    except Exception as error:  # noqa: BLE001 (any failure here only costs speed)
        detail = getattr(error, "stderr", "") or error
        log.warning("rpm's CPU kernels did not build (%s); using torch's operations", str(detail).strip()[:300])
        return None
    return lib


def _call(function, *args) -> None:
    """function(*args) with each tensor passed as its data's address; the tensors (some made here, per-channel
    vectors as contiguous float32) are held until the call returns."""
    held = [a.detach().contiguous() if isinstance(a, torch.Tensor) else a for a in args]
    if function(*(a.data_ptr() if isinstance(a, torch.Tensor) else a for a in held)):
        raise MemoryError(f"rpm's kernel {function.__name__} could not allocate its partial sums")


def _per_channel(v: torch.Tensor) -> torch.Tensor:
    return v.detach().to(torch.float32)


def _sizes(y: torch.Tensor) -> tuple:
    return y.shape[0], y.shape[1], math.prod(y.shape[2:])


def _forward(lib, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    n, c, h, width = x.shape
    y = x.new_empty(n, w.shape[0], h - 2, width - 2)
    _call(lib.conv3x3_forward, x, w, y, n, c, w.shape[0], h, width)
    return y


def _weight_grad(lib, gy: torch.Tensor, x: torch.Tensor, out_channels: int) -> torch.Tensor:
    n, c, h, width = x.shape
    grad = x.new_empty(out_channels, c, 3, 3)
    _call(lib.conv3x3_weight_grad, gy, x, grad, n, c, out_channels, h, width)
    return grad


class _Conv3x3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        lib = library()
        ctx.save_for_backward(x, w)
        return _forward(lib, x, w.contiguous())

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        lib, gy = library(), gy.contiguous()
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:  # the full correlation with the flipped kernel, channels swapped
            grad_x = _forward(lib, F.pad(gy, (2, 2, 2, 2)), w.flip(2, 3).transpose(0, 1).contiguous())
        if ctx.needs_input_grad[1]:
            grad_w = _weight_grad(lib, gy, x, w.shape[0])
        return grad_x, grad_w


def conv3x3(x: torch.Tensor, w: torch.Tensor, kernels: bool = True) -> torch.Tensor:
    """F.conv2d(x, w) for a (O, C, 3, 3) kernel without padding, by rpm's kernels where they apply (and
    `kernels`)."""
    fits = (kernels and x.device.type == "cpu" and x.dtype == w.dtype == torch.float32 and x.is_contiguous()
            and w.shape[-2:] == (3, 3) and w.shape[1] == x.shape[1] and max(w.shape[0], x.shape[1]) <= MAX_OUT
            and x.shape[-1] >= MIN_WIDTH and x.shape[-2] >= 3)
    if not fits or library() is None:
        return F.conv2d(x, w)
    return _Conv3x3.apply(x, w)


def usable(kernels: bool, y: torch.Tensor, *others: torch.Tensor):
    """The kernels, if wanted (`kernels`) and built, for a contiguous float32 CPU tensor `y` and float32 CPU
    `others` (made contiguous when passed); else None."""
    if (kernels and y.is_contiguous()
            and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in (y, *others))):
        return library()
    return None


def masked_moments(lib, y, own, shift) -> tuple:
    """Per channel: the sums of own * (y - shift) and of its squares (float64)."""
    total, squares = (y.new_empty(y.shape[1], dtype=torch.float64) for _ in range(2))
    _call(lib.masked_moments, y, own, _per_channel(shift), total,
                       squares, *_sizes(y))
    return total, squares


def masked_moments_grad(lib, y, own, shift, grad_total, grad_squares) -> torch.Tensor:
    grad_y = torch.empty_like(y)
    _call(lib.masked_moments_grad, y, own, _per_channel(shift),
                            _per_channel(grad_total), _per_channel(grad_squares),
                            grad_y, *_sizes(y))
    return grad_y


def scale_shift_relu(lib, y, scale, shift, outside) -> torch.Tensor:
    """relu(y * scale + shift), 0 where `outside` (float 1 or 0, (n, 1, h, w)) is 1."""
    a = torch.empty_like(y)
    _call(lib.scale_shift_relu, y, _per_channel(scale), _per_channel(shift),
                         outside, a, *_sizes(y))
    return a


def relu_grad_sums(lib, grad_a, a, y) -> tuple:
    """With g = grad_a where a > 0: per channel, the sums of g and of g * y (float64)."""
    sum_g, sum_gy = (y.new_empty(y.shape[1], dtype=torch.float64) for _ in range(2))
    _call(lib.relu_grad_sums, grad_a, a, y, sum_g, sum_gy,
                       *_sizes(y))
    return sum_g, sum_gy


def batchnorm_relu_grad(lib, grad_a, a, y, own, k_y, k_own, scale) -> torch.Tensor:
    """own * (y * k_y + k_own) + g * scale, g as in relu_grad_sums."""
    grad_y = torch.empty_like(y)
    _call(lib.batchnorm_relu_grad, grad_a, a, y, own,
                            _per_channel(k_y), _per_channel(k_own),
                            _per_channel(scale), grad_y, *_sizes(y))
    return grad_y


def scale_shift(lib, y, scale, shift) -> torch.Tensor:
    out = torch.empty_like(y)
    _call(lib.scale_shift, y, _per_channel(scale), _per_channel(shift), out,
                    *_sizes(y))
    return out


def difference_sums(lib, maps, values, row_class, col_class, own) -> tuple:
    """d = own * (maps - background) over (n, C, s, s), the background by border class (values (C, 3, 3), classes
    uint8 (n, s)): its sums over rows and over columns, (n, C, s) each."""
    n, c, side = maps.shape[0], maps.shape[1], maps.shape[-1]
    cols, rows = maps.new_empty(n, c, side), maps.new_empty(n, c, side)
    _call(lib.difference_sums, maps, _per_channel(values), row_class, col_class, own, cols, rows, n, c, side)
    return cols, rows


def sigmoid_difference_grad(lib, grad_cols, grad_rows, maps, y, own, scale) -> tuple:
    """(grad_y, sum of grad_pre, sum of grad_pre * y): see native.c."""
    n, c, side = y.shape[0], y.shape[1], y.shape[-1]
    grad_y = torch.empty_like(y)
    sum_pre, sum_pre_y = (y.new_empty(c, dtype=torch.float64) for _ in range(2))
    _call(lib.sigmoid_difference_grad, grad_cols, grad_rows, maps, y, own, _per_channel(scale), grad_y, sum_pre,
          sum_pre_y, n, c, side)
    return grad_y, sum_pre, sum_pre_y
