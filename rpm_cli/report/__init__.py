"""`rpm report DIR`: write DIR/REPORT.md for a `make reproduce` directory (reproduction.py writes it; the
ablation sections come from ablations.py)."""
import argparse
import sys
from pathlib import Path

from rpm_cli.errors import UserError, reported


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line and exit code 2, as everywhere in rpm."""

    def error(self, message):
        print(f"error: {message} (usage: {self.prog} DIR [--wall-seconds S] [--jobs N] [--figure-seconds S] "
              f"[--reused N]; {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def main(argv=None) -> int:
    parser = OneLineParser(prog="rpm report", description="write DIR/REPORT.md for a `make reproduce` dir")
    parser.add_argument("root", type=Path, help="the reproduction directory (e.g. outputs/reproduce)")
    parser.add_argument("--wall-seconds", type=float)
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--figure-seconds", type=float, help="when Fig. 1 was ready, from the start")
    parser.add_argument("--reused", type=int, default=0, help="runs an earlier invocation had already finished")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    with reported():
        from rpm_cli.report.reproduction import write_report  # torch and matplotlib: after the command line

        try:
            report = write_report(args.root, args.wall_seconds, args.jobs, args.figure_seconds, args.reused)
        except OSError as exc:  # a dir that vanished while it was read (/proc), or one that cannot be read
            raise UserError(f"cannot read or write under {args.root}: {exc.strerror or exc} ({exc.filename})") from None
        print(report)
    return 0
