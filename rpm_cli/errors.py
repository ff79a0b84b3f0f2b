"""User-facing failures: one line on stderr and a distinct exit code, no traceback."""
import contextlib
import os
import sys


class UserError(Exception):
    """Bad input (config value, path, missing file): exit code 2."""

    exit_code = 2


class RunDirBusy(UserError):
    """Another process trains in this run dir: nothing of it may be touched."""


class TrainingDiverged(Exception):
    """A non-finite loss or parameter: training stops, the last good checkpoint is kept. Exit code 3."""

    exit_code = 3


@contextlib.contextmanager
def reported(debug: bool = False):
    """Turn UserError / TrainingDiverged into `error: ...` and their exit code (traceback with debug).

    `debug` comes straight from a config, before validation (which refuses anything but a boolean): only a
    real True shows the traceback."""
    try:
        yield
    except (UserError, TrainingDiverged) as exc:
        if debug is True or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
