"""Atomic file writes: a crash at any instant leaves either the old complete file or the new one.

A write that fails (disk full, read-only or vanished directory) leaves the old file as it was, removes its
temporary file, and is reported as one line naming the path (exit code 2), not a traceback.
"""
import contextlib
import json
import os
import tempfile
from pathlib import Path

from rpm_cli.errors import UserError


@contextlib.contextmanager
def atomic_path(path, durable: bool = True):
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename. `durable`: flushed to
    disk first (fsync), so that a power cut cannot leave an empty file; a cache that checks what it reads and
    regenerates a bad file can skip it."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        yield Path(tmp)
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc} (the previous file, if any, is unchanged)") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def append_line(path, line: str) -> None:
    """Append one line by rewriting the file atomically, so a reader never sees half a line."""
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    write_text(path, old + line.rstrip("\n") + "\n")


def point_symlink(link, target) -> None:
    """Make `link` point at `target`, replacing any old link in one rename."""
    link = Path(link)
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(os.path.relpath(Path(target).resolve(), link.parent.resolve()), tmp)
    os.replace(tmp, link)
