"""Element-wise work of the prepared layers on more than one thread.

numpy's ufuncs release the GIL, so independent blocks of a pass (channel groups of a
requantize or of a depthwise convolution) run concurrently on a thread pool.  Blocks
are disjoint and each is computed exactly as on one thread, so the output is the same
integers for any thread count.

The count is 1 unless set: ``QMAC_THREADS=n`` in the environment, or
:func:`set_threads` (``make bench`` uses 2, the thread count it gives onnxruntime).
BLAS threads (the GEMMs) are separate: OpenBLAS's own setting / threadpoolctl.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

from pymodel import validate

T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None


def _env_threads() -> int:
    text = os.environ.get("QMAC_THREADS", "").strip() or "1"
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"QMAC_THREADS: {text!r} is not an integer; allowed 1..256") from None
    return validate.int_scalar("QMAC_THREADS", n, 1, 256)


_threads = _env_threads()


def threads() -> int:
    """The number of threads element-wise passes use."""
    return _threads


def set_threads(n: int) -> None:
    """Use ``n`` threads (1 .. 256) for element-wise passes from now on."""
    global _threads, _pool
    n = validate.int_scalar("threads", n, 1, 256)
    if n != _threads and _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    _threads = n


def run_all(fn: Callable[[T], None], items: Iterable[T]) -> None:
    """``fn(item)`` for every item: on the pool when there are several threads and
    items, else in order on this thread.  Exceptions propagate."""
    global _pool
    todo = list(items)
    if _threads == 1 or len(todo) < 2:
        for it in todo:
            fn(it)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_threads, thread_name_prefix="qmac")
    for f in [_pool.submit(fn, it) for it in todo]:
        f.result()


def split(n: int, parts: int | None = None) -> list[slice]:
    """``range(n)`` cut into ``parts`` (default: the thread count) contiguous slices."""
    p = max(1, min(n, parts or _threads))
    edges = [n * i // p for i in range(p + 1)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]
