"""Memory a run will hold, estimated from its config alone, checked before anything is allocated.

The estimate is deliberately simple and on the high side: the three uint8 videos held in memory, the float
copy rendering makes of one ball patch per frame, the activations of one dense training step (forward and
backward) at the batch size, and of one evaluation batch. A run whose estimate exceeds the memory available
(or `max_memory_gb`, when set) is refused with one line naming the estimate and the keys behind it.
"""
import os

from omegaconf import DictConfig

from rpm_cli.errors import UserError

FLOAT = 4
EVAL_BATCH = 100  # frames per forward pass in `rpm evaluate`
HEADROOM = 1.5    # for the interpreter, torch's own buffers and fragmentation


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo, else the physical memory, else a large number (unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**62


def estimate_bytes(cfg: DictConfig) -> dict:
    """Bytes by part; every part is a product of config values, so a huge key shows at once."""
    d, e, t = cfg.data, cfg.encoder, cfg.trainer
    pixels = d.image_size**2
    frames = d.n_frames + d.get("val_frames", 0) + d.test_frames
    # Per pixel of a frame in a training step: input (3), conv1/bn1/relu (3 x hidden), conv2/bn2/sigmoid (3 x maps),
    # kept for backward and matched by as many gradients.
    per_pixel = (3 + 3 * e.hidden_channels + 3 * e.n_maps) * FLOAT
    return {
        "videos": frames * 3 * pixels,
        "training step": 2 * (2 * t.batch_size) * pixels * per_pixel,
        "evaluation batch": EVAL_BATCH * pixels * per_pixel,
    }


def check_budget(cfg: DictConfig) -> None:
    parts = estimate_bytes(cfg)
    total = HEADROOM * sum(parts.values())
    limit_gb = cfg.get("max_memory_gb")
    limit = limit_gb * 2**30 if limit_gb else available_bytes()
    if total > limit:
        detail = ", ".join(f"{name} {size / 2**30:.3g} GiB" for name, size in parts.items())
        source = f"max_memory_gb={limit_gb}" if limit_gb else "the memory available"
        raise UserError(f"the run would need about {total / 2**30:.3g} GiB ({detail}; x{HEADROOM} headroom), more than "
                        f"{source} ({limit / 2**30:.3g} GiB): lower data.image_size, data.n_frames, "
                        f"data.val_frames, data.test_frames or trainer.batch_size")
