"""The one cache every dataset uses: generated arrays kept on disk (npz, keyed by what generated them) and the
last few kept in this process.

A file that is missing, truncated, corrupt or for another key is regenerated, and written atomically, so a
killed run never leaves a half-written cache behind.
"""
import hashlib
import json
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np

from rpm_cli.atomic import atomic_path

log = logging.getLogger(__name__)

RECENT = 4  # a run's training, validation and test splits, and the next run's training split
_recent: "OrderedDict[str, object]" = OrderedDict()


def cache_path(cache_dir, prefix: str, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"{prefix}-{digest}.npz"


def _read(path: Path, key: dict, valid: Callable[[dict], bool]) -> dict | None:
    """The cached arrays, or None when the file is missing, unreadable, for another key or fails `valid`."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored_key = json.loads(str(npz["key"]))
            arrays = {name: npz[name] for name in npz.files if name != "key"}
    except Exception as exc:  # zipfile, OSError, ValueError, KeyError: any unreadable file is regenerated
        log.warning("cache %s is unreadable (%s); regenerating", path, exc)
        return None
    if stored_key != key or not valid(arrays):
        log.warning("cache %s does not match its config; regenerating", path)
        return None
    return arrays


def _write(path: Path, key: dict, arrays: dict) -> None:
    # Not fsync'ed (0.3 s for a paper-size video, measured): _read checks the file and regenerates a bad one.
    with atomic_path(path, durable=False) as tmp:
        with open(tmp, "wb") as f:  # a file object, so numpy does not append its own suffix
            np.savez(f, **arrays, key=json.dumps(key, sort_keys=True))


def load(prefix: str, key: dict, cache_dir, generate: Callable[[], dict], valid: Callable[[dict], bool],
         wrap: Callable[[dict], object]):
    """wrap(arrays) for `key`: kept by this process, else read from `cache_dir` (None: no disk cache), else
    generate() and cache it. The kept objects are shared: nobody may modify them."""
    name = json.dumps([prefix, key, str(cache_dir)], sort_keys=True)  # a new cache dir gets its copy
    if name not in _recent:
        path = cache_path(cache_dir, prefix, key) if cache_dir else None
        arrays = _read(path, key, valid) if path else None
        if arrays is None:
            arrays = generate()
            if path:
                _write(path, key, arrays)
        _recent[name] = wrap(arrays)
        while len(_recent) > RECENT:
            _recent.popitem(last=False)
    _recent.move_to_end(name)
    return _recent[name]


def forget_recent() -> None:
    """Drop what this process keeps, so that the next load reads the disk cache again."""
    _recent.clear()
