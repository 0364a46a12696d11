"""One BLAS thread for everything the command line computes.

OpenBLAS splits a matrix product over its threads, and how it splits depends on the
thread count, so ``a @ b`` can differ in the last bits between 1, 2 and 8 threads (with
the digits network's matrices: see ``tests/test_determinism.py``).  Calibrated ranges
inherit those bits, and QAT, a few hundred Adam steps, amplifies them into different
weights and a different accuracy table.  Every command therefore runs with exactly one
BLAS thread, whatever ``OPENBLAS_NUM_THREADS`` says: the output is then a function of the
inputs alone (for one numpy / OpenBLAS build on one CPU family -- a different kernel,
e.g. AVX-512 instead of AVX2, may still round differently).  For these small matrices
one thread is also the fastest (the accuracy study: 13.5 s with one thread, 74 s with
the default on two busy cores).
"""

from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Limit every BLAS / OpenMP thread pool numpy and scipy use to one thread
    (``threadpoolctl``) for the duration."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def blas_kernel() -> str:
    """The BLAS library and the CPU kernel it selected, e.g. ``"OpenBLAS SkylakeX"``
    (``OPENBLAS_CORETYPE`` overrides OpenBLAS's choice); ``"unknown BLAS"`` if none is
    found.  Different kernels may round matrix products differently."""
    from threadpoolctl import threadpool_info

    import numpy  # noqa: F401  (loads the BLAS, so threadpoolctl sees it)
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            name = {"openblas": "OpenBLAS", "mkl": "MKL"}.get(info.get("internal_api"),
                                                             str(info.get("internal_api")))
            arch = info.get("architecture")
            return f"{name} {arch}" if arch else name
    return "unknown BLAS"
