"""The `rpm` console script: `rpm <command> [hydra args]`.

Hydra has no subcommands, so this dispatcher pops the command word and hands the rest of argv to that
command's own `@hydra.main` app. It imports no torch, so `rpm --help` is instant.
"""
import importlib
import os
import re
import sys
from pathlib import Path

from rpm_cli import CONFIG_DIR

COMMANDS = {
    "train": ("rpm_cli.apps:train_main", "train an encoder with InfoNCE (prior=gaussian|linear) or supervised"),
    "evaluate": ("rpm_cli.apps:evaluate_main", "linear readout of ball positions: joint and per-slot L2 in pixels"),
    "figures": ("rpm_cli.apps:figures_main", "regenerate Fig. 1 panels, or summarise a sweep (sweep_dir=...)"),
}
# glibc otherwise returns every large tensor's memory to the OS on free and page-faults it back on the next
# allocation; on these 2-core machines that was two thirds of a training step (see README, Performance).
FAST_ALLOCATOR_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40)}
CONFIG_GROUPS = ("data", "encoder", "prior", "trainer", "experiment")
_GROUP_OVERRIDE = re.compile(r"^[+~]*(%s)=(.*)$" % "|".join(CONFIG_GROUPS))


def usage() -> str:
    lines = ["usage: rpm <command> [hydra overrides and flags]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Each command is a Hydra app: `rpm train --help`, `rpm train --cfg job`, `rpm train -m ...`."]
    return "\n".join(lines)


def group_option_error(args: list[str]) -> str | None:
    """Check `group=option` overrides against the files in configs/<group>/ before Hydra starts.

    Hydra would reject an unknown option too, but with a multi-line report and exit code 1; a user
    error here is one line and exit code 2.
    """
    for arg in args:
        match = _GROUP_OVERRIDE.match(arg)
        if not match:
            continue
        group, value = match.groups()
        if any(c in value for c in "()[]{}$") or value in ("", "null"):
            continue  # sweep functions and interpolations are Hydra's to parse
        allowed = sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
        for option in value.split(","):
            if option.strip() not in allowed:
                return f"{group} must be one of: {', '.join(allowed)} (got '{option.strip()}')"
    return None


def resume_error(args: list[str]) -> str | None:
    """`resume=DIR` becomes Hydra's run dir, so check it before Hydra creates a directory there."""
    for arg in args:
        if arg.startswith("resume=") and arg != "resume=null":
            path = Path(arg.split("=", 1)[1])
            if not (path / "checkpoint.pt").is_file():
                return f"resume must be a run dir holding checkpoint.pt (got '{path}')"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command '{command}'; allowed: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    if command == "train" and (message := group_option_error(rest) or resume_error(rest)):
        print(f"error: {message}", file=sys.stderr)
        return 2
    if os.environ.get("RPM_ALLOCATOR", "fast") == "fast" and any(
            os.environ.get(k) != v for k, v in FAST_ALLOCATOR_ENV.items()):
        # The allocator reads these only at process start: run ourselves again with them set.
        env = {**os.environ, **FAST_ALLOCATOR_ENV}
        os.execve(sys.executable, [sys.executable, "-m", "rpm_cli.cli", command, *rest], env)
    sys.argv = [f"rpm-{command}", *rest]
    module, function = COMMANDS[command][0].split(":")
    getattr(importlib.import_module(module), function)()
    return 0


if __name__ == "__main__":
    sys.exit(main())
