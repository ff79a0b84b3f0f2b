"""Everything about `rpm train resume=<run_dir>`, in one place.

The rule: a resumed run continues with the config stored in its checkpoint. The command line may add only
keys that do not change the numbers (progress bar, threads, device, debug, evaluate, sweep_metric) and
`trainer.epochs`, to extend a run (finished or not) to more epochs, with `trainer.keep_from` while the run has
kept no epoch and has not trained past it. Any other override is refused with one line and exit code 2, never
dropped in silence.
"""
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from rpm_cli.errors import UserError
from rpm_cli.layout import CHECKPOINT, RUNTIME_KEYS

EXTENDABLE = "trainer.epochs"
KEEP_FROM = "trainer.keep_from"  # may change on resume while it changes nothing yet (_keep_from_changes_nothing)
# Config groups (logger) are not among them: a resumed run keeps its own.
ALLOWED = tuple(k for k in RUNTIME_KEYS if k not in ("seed", "resume", "logger")) + (EXTENDABLE,)



def _parsed(args: list[str]):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from rpm_cli.overrides import override_args

    return OverridesParser.create().parse_overrides(override_args(args))


def resume_dir(args: list[str]) -> str | None:
    """The run dir `resume=` (or `+resume=`, `++resume=`) names on a command line, else None."""
    from hydra.errors import HydraException

    try:
        values = [o.get_value_element_as_str() for o in _parsed(args) if o.key_or_group == "resume" and not o.is_delete()]
    except HydraException:
        return None  # the override checker reports unparsable input
    return values[-1] if values and values[-1] not in ("", "null") else None


def command_line_error(args: list[str]) -> str | None:
    """Checked before Hydra starts (it would create a run dir at resume=): None when the args are fine."""
    resume = resume_dir(args)
    if resume is None:
        return None
    path = Path(resume)
    if not (path / CHECKPOINT).is_file():
        return f"resume must be a run dir holding {CHECKPOINT} (got '{path}')"
    if any(a in ("-m", "--multirun") for a in args):
        return "resume cannot be combined with -m/--multirun: resume one run dir at a time"
    refusals = [refusal(o) for o in _parsed(args) if _applies(o)]
    return next((r for r in refusals if r), None)


def _applies(override) -> bool:
    """Overrides that would change the resumed run's config (resume= itself and Hydra's own keys do not)."""
    key = override.key_or_group
    return key != "resume" and not key.startswith(("hydra.", "hydra/"))


def refusal(override) -> str | None:
    """Why resume refuses this override, or None when it is one of ALLOWED."""
    if override.key_or_group in (*ALLOWED, KEEP_FROM) and not override.is_delete():
        return None  # keep_from: state_to_continue refuses it where it would change the run
    return (f"resume continues the checkpoint's own config; {override.key_or_group} cannot be "
            f"{'deleted' if override.is_delete() else 'overridden'} (allowed with resume: {', '.join(ALLOWED)})")


def config_for_resume(run_dir, overrides: list[str]) -> DictConfig:
    """The checkpoint's config with the allowed command-line overrides applied, and resume set. An override
    outside ALLOWED is refused here too, so none is ever dropped, whatever path reached this function."""
    from rpm_cli.runs import load_checkpoint  # torch: not on the command-line check's path

    state = load_checkpoint(Path(run_dir) / CHECKPOINT)
    cfg = OmegaConf.create(state["config"])
    for override in filter(_applies, _parsed(overrides)):
        if message := refusal(override):
            raise UserError(message)
        OmegaConf.update(cfg, override.key_or_group, yaml.safe_load(override.get_value_element_as_str()),
                         force_add=True)
    cfg.resume = str(run_dir)
    return cfg


def _keep_from_changes_nothing(wanted: DictConfig, state: dict) -> bool:
    """trainer.keep_from may differ while the run has kept no epoch and has not trained past the new value
    (or the new value is 0): it then ends as a run trained with it from the start (train.py reads the leak of
    the epoch it resumes from), which is how the recipe study extends finished runs."""
    keep_from = OmegaConf.select(wanted, KEEP_FROM, default=0) or 0
    return "kept" not in state and (keep_from == 0 or state["epoch"] <= keep_from)


def _same_run(cfg: DictConfig, state: dict) -> bool:
    """Whether `cfg` is the checkpoint's config, apart from the keys resume allows."""

    from rpm_cli.runs import upgrade_config

    # Both sides in the layout load_checkpoint gives the stored one (a supervised run's `prior: None`, say).
    stored = OmegaConf.create(state["config"])
    wanted = OmegaConf.create(upgrade_config(OmegaConf.to_container(cfg, resolve=True)))
    for key in (*ALLOWED, "resume", *((KEEP_FROM,) if _keep_from_changes_nothing(wanted, state) else ())):
        for tree in (stored, wanted):
            _drop(tree, key)
    return OmegaConf.to_container(stored, resolve=True) == OmegaConf.to_container(wanted, resolve=True)


def sweep_job_again(cfg: DictConfig, run_dir: Path) -> tuple[DictConfig, dict | None]:
    """A multirun job whose run dir already holds a run (a sweep started again): the same config continues
    it, so a rerun of a killed sweep finishes it; returns (config, the final metrics if it had finished)."""
    from rpm_cli.runs import load_checkpoint  # torch: not on the command-line check's path

    state = load_checkpoint(run_dir / CHECKPOINT)
    if not _same_run(cfg, state):
        raise UserError(f"run dir {run_dir} already holds a run with another config; refusing to overwrite it")
    if state["finished"] and state["epoch"] == cfg.trainer.epochs:
        return cfg, state["metrics"]
    cfg = OmegaConf.create(OmegaConf.to_container(cfg))
    cfg.resume = str(run_dir)
    return cfg, None


def state_to_continue(cfg: DictConfig, run_dir: Path) -> dict | None:
    """The checkpoint a run continues from (resume=), or None for a fresh run in an unused dir.

    `cfg` must equal the checkpoint's config except for the keys resume allows; a longer trainer.epochs
    extends the run, a shorter one than it has trained is refused.
    """
    from rpm_cli.runs import load_checkpoint  # torch: not on the command-line check's path

    if not cfg.get("resume"):
        if (run_dir / CHECKPOINT).exists():
            raise UserError(f"run dir {run_dir} already holds a run; refusing to overwrite it (use resume=)")
        return None
    state = load_checkpoint(Path(cfg.resume) / CHECKPOINT)
    if not _same_run(cfg, state):
        raise UserError(f"resume={cfg.resume}: the config differs from the checkpoint's beyond {', '.join(ALLOWED)} "
                        f"(and {KEEP_FROM} up to the epochs it has trained, before it has kept one)")
    epochs, done = cfg.trainer.epochs, state["epoch"]
    if state["finished"] and epochs == done:
        raise UserError(f"resume={cfg.resume} is already finished ({done} epochs); nothing to resume "
                        f"(trainer.epochs=N with N > {done} extends it)")
    if epochs <= done:  # an unfinished run may be shortened, but not to nothing left to train
        raise UserError(f"trainer.epochs must be more than the {done} epochs run {cfg.resume} has trained (got {epochs})")
    return state


def _drop(tree, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.get(part) if isinstance(tree, dict) or OmegaConf.is_dict(tree) else None
        if tree is None:
            return
    if leaf in tree:
        del tree[leaf]
