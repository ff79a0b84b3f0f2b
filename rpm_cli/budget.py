"""Memory a run will hold, estimated from its config alone, checked before anything is allocated.

The estimate is deliberately simple and on the high side: what the dataset holds (for the balls, the three
uint8 videos), and what the encoder holds for one training step (forward and backward) at the batch size and
for one evaluation batch; each plug-in states its own part. A run whose estimate exceeds the memory available
(or `max_memory_gb`, when set) is refused with one line naming the estimate and the keys behind it.
"""
import os

from omegaconf import DictConfig

from rpm_cli.errors import UserError

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
    """Bytes by part: the dataset's (its splits) and the encoder's (a training step, an evaluation batch); every
    part is a product of config values, so a huge key shows at once."""
    from rpm_cli.data.build import dataset_class
    from rpm_cli.models.build import encoder_class

    return {**dataset_class(cfg.data).memory(cfg), **encoder_class(cfg.encoder).memory(cfg)}


def check_budget(cfg: DictConfig) -> None:
    from rpm_cli.data.build import dataset_class

    parts = estimate_bytes(cfg)
    total = HEADROOM * sum(parts.values())
    limit_gb = cfg.get("max_memory_gb")
    limit = limit_gb * 2**30 if limit_gb else available_bytes()
    if total > limit:
        detail = ", ".join(f"{name} {size / 2**30:.3g} GiB" for name, size in parts.items())
        source = f"max_memory_gb={limit_gb}" if limit_gb else "the memory available"
        raise UserError(f"the run would need about {total / 2**30:.3g} GiB ({detail}; x{HEADROOM} headroom), more than "
                        f"{source} ({limit / 2**30:.3g} GiB): lower {dataset_class(cfg.data).memory_keys}")
