"""rpm's OmegaConf resolvers, used by the Hydra sections of its configs; registered by the command layer
(rpm_cli.apps) before any config is composed, never as a side effect of importing validation."""
import hashlib
import re

from omegaconf import OmegaConf

from rpm_cli.layout import HYDRA_RECORD, HYDRA_RESUME_RECORD, RUNTIME_KEYS


MAX_NAME_BYTES = 255  # a file name's limit on Linux and macOS file systems


def sweep_subdir(override_dirname: str, seed) -> str:
    # Readable and unique per job: the overrides, then the seed (always, even when not swept). A name over the
    # file system's limit keeps its start and gets a digest of the whole in place of the rest, still unique.
    name = re.sub(r"[/\\]", "-", override_dirname)
    full = f"{name}_seed-{seed}" if name else f"seed-{seed}"
    if len(full.encode()) <= MAX_NAME_BYTES:
        return full
    tail = f"~{hashlib.sha1(name.encode()).hexdigest()[:12]}_seed-{seed}"
    head = name.encode()[:MAX_NAME_BYTES - len(tail.encode())].decode(errors="ignore")
    return head + tail


# A resumed run writes into its own dir, with its Hydra record beside the original one, which stays untouched.
RESOLVERS = {
    "rpm_run_dir": lambda resume, default: str(resume) if resume else default,
    "rpm_hydra_subdir": lambda resume: HYDRA_RESUME_RECORD if resume else HYDRA_RECORD,
    "rpm_sweep_subdir": sweep_subdir,
    "rpm_runtime_keys": lambda: list(RUNTIME_KEYS),
}


def register_resolvers() -> None:
    for name, fn in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
