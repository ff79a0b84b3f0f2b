"""The `rpm` console script (and `python -m rpm_cli`): `rpm <command> [hydra args]`.

Hydra has no subcommands, so this dispatcher pops the command word and hands the rest of argv to that
command's own `@hydra.main` app, after checking the overrides (unknown keys and options: one line, exit 2).
It imports no torch, so `rpm --help` is instant.
"""
import importlib
import os
import sys
import tempfile
from pathlib import Path

from rpm_cli import allocator
from rpm_cli.resolvers import register_resolvers

# command: (app, config name, help, whether the fast allocator pays)
COMMANDS = {
    "train": ("rpm_cli.apps:train_main", "train", "train an encoder with InfoNCE under a prior (prior=...) or supervised", True),
    "evaluate": ("rpm_cli.apps:evaluate_main", "evaluate", "validation and test scores of a run: readout L2, I_N, retrieval; its pictures", True),
    "figures": ("rpm_cli.apps:figures_main", "figures", "Fig. 1 panels, a sweep's summary (sweep_dir=...) or a run's pictures (run_dir=...)", False),
    "theory": ("rpm_cli.apps:theory_main", "theory", "check the paper's identities (Sec. 4, App. A-C) on a linear-Gaussian RPM", False),
    "report": ("rpm_cli.report:main", None, "write REPORT.md for a `make reproduce` directory: rpm report DIR", False),
}


def usage() -> str:
    lines = ["usage: rpm <command> [hydra overrides and flags]   (also: python -m rpm_cli <command> ...)", "",
             "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, _, help_, _) in COMMANDS.items()]
    lines += ["", "Each command but report is a Hydra app: `rpm train --help`, `rpm train --cfg job`, `rpm train -m ...`."]
    return "\n".join(lines)


def output_dir_error(args: list[str]) -> str | None:
    """Hydra creates its output dir first thing and fails with a traceback when it cannot: check before.

    Probes the nearest existing ancestor by creating and removing a temporary dir (permission bits do not
    tell root the truth, /proc and read-only mounts refuse anyway)."""
    for key in ("hydra.run.dir", "hydra.sweep.dir"):
        given = [a.split("=", 1)[1] for a in args if a.startswith(key + "=")]
        target = Path(given[-1]) if given and "$" not in given[-1] else Path("outputs")
        ancestor = target
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".rpm-probe-", dir=ancestor))
        except OSError as exc:
            return f"cannot create or write the output dir {target} ({ancestor}: {exc.strerror or exc}); set {key}=<a writable dir>"
    return None


def hydra_flags_error(args: list[str]) -> str | None:
    """Hydra's own flags, parsed by Hydra's parser before it runs: its usage text would be many lines."""
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    problems = []
    parser.error = problems.append  # argparse reports through error(); keep the message, do not exit
    try:
        parser.parse_args(args)
    except (TypeError, AttributeError):  # argparse goes on after error() returns: the first message is kept
        pass
    return f"{problems[0]} (see rpm <command> --help)" if problems else None


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    register_resolvers()  # the override checks below compose configs that use them
    if command not in COMMANDS:
        return _error(f"unknown command '{command}'; allowed: {', '.join(COMMANDS)}")
    target, config_name, _, fast_allocator = COMMANDS[command]
    modes = [a for a in rest if a in ("-m", "--multirun", "--cfg", "-c", "--info", "-i", "-sc", "--shell-completion")]
    if len({m.lstrip("-")[:1] for m in modes}) > 1:
        return _error(f"only one of -m/--multirun, --cfg, --info, --shell-completion at a time (got {' '.join(modes)})")
    if config_name is not None:  # also with --help: Hydra composes the overrides to print the help
        from rpm_cli import overrides

        message = hydra_flags_error(rest) or overrides.check(config_name, rest)
        if message is None and command == "train":
            from rpm_cli.resume import command_line_error

            message = command_line_error(rest)
        message = message or output_dir_error(rest)
        if message:
            return _error(message)
    if fast_allocator:
        allocator.reexec_with_fast_allocator(["-m", "rpm_cli", command, *rest])
    sys.argv = [f"rpm-{command}", *rest]
    module, function = target.split(":")
    result = getattr(importlib.import_module(module), function)()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
