"""Atomic, reproducible file output.

Every artifact is written to a temporary file in the destination directory, flushed,
fsync'ed and moved into place with :func:`os.replace` -- so a reader sees either the old
file or the complete new one, never a half-written file, even on an exception or
Ctrl-C (the temporary file is removed and the exception re-raised).

``.npz`` files are written with fixed zip timestamps and sorted members, so the same
arrays give the same bytes (artifacts diff cleanly in git); :func:`arrays_digest` is a
content hash independent of the container.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import zipfile
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write ``path`` atomically: ``write(f)`` fills a temporary file, then it replaces
    ``path``.  On any exception (including KeyboardInterrupt) nothing is replaced and the
    temporary file is removed."""
    dest = Path(path)
    if not dest.parent.is_dir():
        raise ValueError(f"{dest}: directory {dest.parent} does not exist")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write(path, lambda f: f.write(text.encode()))


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An ``.npz`` (uncompressed zip of ``.npy``) of ``arrays``, byte-reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(arrays[name]),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy.getvalue())
    return buf.getvalue()


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Atomically write ``arrays`` as a reproducible ``.npz``."""
    data = npz_bytes(arrays)
    return atomic_write(path, lambda f: f.write(data))


def arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the sorted names, dtypes, shapes and bytes of ``arrays`` (hex)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()
