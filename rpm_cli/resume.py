"""Everything about `rpm train resume=<run_dir>`, in one place.

The rule: a resumed run continues with the config stored in its checkpoint. The command line may add only
keys that do not change the numbers (progress bar, threads, device, debug, evaluate, sweep_metric) and
`trainer.epochs`, to extend a run (finished or not) to more epochs. Any other override is refused with one
line and exit code 2, never dropped in silence.
"""
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from rpm_cli.config import RUNTIME_KEYS
from rpm_cli.errors import UserError

CHECKPOINT_NAME = "checkpoint.pt"  # runs.CHECKPOINT; repeated here so the CLI check imports no torch
EXTENDABLE = "trainer.epochs"
ALLOWED = tuple(k for k in RUNTIME_KEYS if k not in ("seed", "resume")) + (EXTENDABLE,)


# Registered by config.register_resolvers: the resumed run writes into its own dir, with its Hydra record
# beside the original one, which stays untouched.
RESOLVERS = {
    "rpm_run_dir": lambda resume, default: str(resume) if resume else default,
    "rpm_hydra_subdir": lambda resume: ".hydra-resume" if resume else ".hydra",
}


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def command_line_error(args: list[str]) -> str | None:
    """Checked before Hydra starts (it would create a run dir at resume=): None when the args are fine."""
    resume = [a.split("=", 1)[1] for a in args if a.startswith("resume=")]
    if not resume or resume[-1] in ("", "null"):
        return None
    path = Path(resume[-1])
    if not (path / CHECKPOINT_NAME).is_file():
        return f"resume must be a run dir holding {CHECKPOINT_NAME} (got '{path}')"
    if any(a in ("-m", "--multirun") for a in args):
        return "resume cannot be combined with -m/--multirun: resume one run dir at a time"
    for arg in args:
        if "=" not in arg or arg.startswith("-") or _key(arg) == "resume":
            continue
        if _key(arg) not in ALLOWED:
            return (f"resume continues the checkpoint's own config; {_key(arg)} cannot be overridden "
                    f"(allowed with resume: {', '.join(ALLOWED)})")
    return None


def config_for_resume(run_dir, overrides: list[str]) -> DictConfig:
    """The checkpoint's config with the allowed command-line overrides applied, and resume set."""
    from rpm_cli.runs import CHECKPOINT, load_checkpoint, upgrade_config

    state = load_checkpoint(Path(run_dir) / CHECKPOINT)
    cfg = OmegaConf.create(upgrade_config(state["config"]))
    for override in overrides:
        key, value = override.split("=", 1)
        if key.lstrip("+~") in ALLOWED:
            OmegaConf.update(cfg, key.lstrip("+~"), yaml.safe_load(value), force_add=True)
    cfg.resume = str(run_dir)
    return cfg


def state_to_continue(cfg: DictConfig, run_dir: Path) -> dict | None:
    """The checkpoint a run continues from (resume=), or None for a fresh run in an unused dir.

    `cfg` must equal the checkpoint's config except for the keys resume allows; a longer trainer.epochs
    extends the run, a shorter one than it has trained is refused.
    """
    from rpm_cli.runs import CHECKPOINT, load_checkpoint, upgrade_config

    if not cfg.get("resume"):
        if (run_dir / CHECKPOINT).exists():
            raise UserError(f"run dir {run_dir} already holds a run; refusing to overwrite it (use resume=)")
        return None
    state = load_checkpoint(Path(cfg.resume) / CHECKPOINT)
    stored = OmegaConf.create(upgrade_config(state["config"]))
    wanted = OmegaConf.to_container(cfg, resolve=True)
    for key in (*ALLOWED, "resume"):
        for tree in (stored, wanted):
            _drop(tree, key)
    stored_plain = OmegaConf.to_container(stored, resolve=True)
    if stored_plain != wanted:
        raise UserError(f"resume={cfg.resume}: the config differs from the checkpoint's beyond {', '.join(ALLOWED)}")
    epochs = cfg.trainer.epochs
    if epochs < state["epoch"]:
        raise UserError(f"trainer.epochs must be at least the {state['epoch']} epochs run {cfg.resume} has trained "
                        f"(got {epochs})")
    if state["finished"] and epochs == state["epoch"]:
        raise UserError(f"resume={cfg.resume} is already finished ({state['epoch']} epochs); nothing to resume "
                        f"(trainer.epochs=N with N > {state['epoch']} extends it)")
    return state


def _drop(tree, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.get(part) if isinstance(tree, dict) or OmegaConf.is_dict(tree) else None
        if tree is None:
            return
    if leaf in tree:
        del tree[leaf]
