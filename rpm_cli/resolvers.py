"""rpm's OmegaConf resolvers, used by the Hydra sections of its configs; registered by the command layer
(rpm_cli.apps) before any config is composed, never as a side effect of importing validation."""
import re

from omegaconf import OmegaConf

from rpm_cli.layout import HYDRA_RECORD, HYDRA_RESUME_RECORD, RUNTIME_KEYS


def sweep_subdir(override_dirname: str, seed) -> str:
    # Readable and unique per job: the overrides, then the seed (always, even when not swept).
    name = re.sub(r"[/\\]", "-", override_dirname)
    return f"{name}_seed-{seed}" if name else f"seed-{seed}"


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
