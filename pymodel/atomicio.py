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

import contextlib
import hashlib
import io
import os
import signal
import threading
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class WrittenThenInterrupted(KeyboardInterrupt):
    """Ctrl-C arrived while complete files were being moved into place: it was held back
    until every rename was done, so ``paths`` are written in full and in place."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__(f"interrupted after writing {', '.join(map(str, paths))}")
        self.paths = paths


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
        with _sigint_deferred([dest]):
            os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


@contextlib.contextmanager
def _sigint_deferred(paths: list[Path]) -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) while ``paths`` are moved into place; afterwards raise
    :class:`WrittenThenInterrupted` naming them (they are complete)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda *a: caught.append(a))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise WrittenThenInterrupted(paths)


def write_group(files: Mapping[str | Path, bytes]) -> list[Path]:
    """Write several files as one unit: every temporary file is written and fsync'ed
    first; only then are they moved into place, one ``os.replace`` after the other with
    Ctrl-C held back.  An exception (or Ctrl-C) before that point changes nothing and
    removes the temporary files."""
    dests = [Path(p) for p in files]
    for d in dests:
        if not d.parent.is_dir():
            raise ValueError(f"{d}: directory {d.parent} does not exist")
    tmps: list[Path] = []
    try:
        for d, data in zip(dests, files.values()):
            tmp = d.with_name(f".{d.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
            tmps.append(tmp)
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        with _sigint_deferred(dests):
            for tmp, d in zip(tmps, dests):
                os.replace(tmp, d)
    except BaseException:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise
    return dests


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write(path, lambda f: f.write(text.encode()))


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An ``.npz`` (uncompressed zip of ``.npy``) of ``arrays``, byte-reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            npy = io.BytesIO()
            np.lib.format.write_array(npy, _contiguous(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy.getvalue())
    return buf.getvalue()


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Atomically write ``arrays`` as a reproducible ``.npz``."""
    data = npz_bytes(arrays)
    return atomic_write(path, lambda f: f.write(data))


def _contiguous(value: Any) -> np.ndarray:
    """C-contiguous array of the same shape (0-d stays 0-d, unlike ascontiguousarray)."""
    a = np.asarray(value)
    return a if a.flags.c_contiguous else a.copy(order="C")


def arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the sorted names, dtypes, shapes and bytes of ``arrays`` (hex)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = _contiguous(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()
