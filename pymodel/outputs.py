"""Output locations checked before any work is done.

A command that computes for a minute and then finds it cannot write its result wastes
that minute; :func:`check_file` and :func:`check_dir` find out first, by creating (and
removing) a probe file where the output will go -- ``os.access`` is not enough, since it
says yes to root on a read-only mount.  Both raise :class:`ValueError` naming the
argument, the path and the reason, so the command line prints one line and exits 2.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _probe(arg: str, directory: Path, shown: Path) -> None:
    """Create and remove a file in ``directory``; ValueError if that fails."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".qmac-write-probe-", dir=directory)
    except OSError as exc:
        raise ValueError(f"{arg}: cannot write to {shown} ({exc.strerror or exc}); "
                         "choose a writable directory") from None
    os.close(fd)
    os.unlink(tmp)


def check_file(arg: str, path: str | Path) -> Path:
    """Check that the file ``path`` can be written (its directory exists and is writable).

    Args:
        arg: the option that named it (``--out``), for the message.
        path: the file to be written later.

    Returns:
        ``path`` as a :class:`Path`.
    """
    p = Path(path)
    parent = p.parent
    if p.is_dir():
        raise ValueError(f"{arg}: {p} is a directory; give a file name")
    if not parent.is_dir():
        raise ValueError(f"{arg}: directory {parent} of {p} does not exist")
    _probe(arg, parent, parent)
    return p


def check_dir(arg: str, path: str | Path) -> Path:
    """Check that files can be written in the directory ``path``, which is created later
    if missing (then its nearest existing ancestor must be writable).

    Args:
        arg: the option that named it (``--out``), for the message.
        path: the output directory.

    Returns:
        ``path`` as a :class:`Path`.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{arg}: {p} exists and is not a directory")
    existing = p
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{arg}: cannot create {p}: {existing} is not a directory")
    _probe(arg, existing, p if existing == p else existing)
    return p
