"""The one cache every dataset uses: generated arrays kept on disk (npz, keyed by what generated them) and the
last few kept in this process.

A file that is missing, truncated, corrupt or for another key is regenerated, and written atomically, so a
killed run never leaves a half-written cache behind.

A cached file is mapped into memory, not read: its pages come from the OS's file cache, shared by every
process that reads the same video, and nothing is copied. For a run's three paper-size videos that takes
0.10-0.13 s against 0.47 s for np.load (measured), which is most of what `rpm evaluate` spent on its videos.
"""
import hashlib
import json
import logging
import mmap
import struct
import zipfile
import zlib
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
        arrays = _mapped_npz(path)
        stored_key = json.loads(str(arrays.pop("key")))
    except Exception as exc:  # zipfile, OSError, ValueError, KeyError: any unreadable file is regenerated
        log.warning("cache %s is unreadable (%s); regenerating", path, exc)
        return None
    if stored_key != key or not valid(arrays):
        log.warning("cache %s does not match its config; regenerating", path)
        return None
    return arrays


_NPY_HEADER = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _mapped_npz(path: Path) -> dict:
    """The arrays of an npz as np.savez writes it (each member an uncompressed .npy), as views of the file mapped
    copy-on-write. Each member's CRC is checked as np.load checks it, so a torn or corrupt file raises here.
    (Nobody writes to them, cache.load's objects being shared; a write would change only this process's copy.)"""
    arrays = {}
    with open(path, "rb") as f, zipfile.ZipFile(path) as archive:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        for member in archive.infolist():
            if member.compress_type != zipfile.ZIP_STORED or not member.filename.endswith(".npy"):
                raise ValueError(f"{member.filename} is not an uncompressed .npy")
            # The zip format's local header: 30 bytes, the name and an extra field, then the member's bytes.
            local = member.header_offset
            if mapped[local:local + 4] != b"PK\x03\x04":
                raise ValueError(f"{member.filename}: no local header")
            name_length, extra_length = struct.unpack("<HH", mapped[local + 26:local + 30])
            start = local + 30 + name_length + extra_length
            if zlib.crc32(memoryview(mapped)[start:start + member.file_size]) != member.CRC:
                raise ValueError(f"{member.filename} fails its CRC")
            f.seek(start)
            shape, fortran_order, dtype = _NPY_HEADER[np.lib.format.read_magic(f)](f)
            if dtype.hasobject or f.tell() + dtype.itemsize * int(np.prod(shape)) > start + member.file_size:
                raise ValueError(f"{member.filename}: an object array or a header that overruns its data")
            arrays[member.filename[:-4]] = np.ndarray(shape, dtype, buffer=mapped, offset=f.tell(),
                                                      order="F" if fortran_order else "C")
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
