"""Seed handling shared by the runner (host side) and the cocotb tests (simulator side).

One number drives a whole regression: the session seed ``QMAC_SEED`` (``make test
SEED=n``).  On the host, :func:`derive_seed` turns it into the seed of one simulation
(passed to cocotb as ``COCOTB_RANDOM_SEED`` by :func:`tb.kit.runner.run_testbench`).
Inside the simulator, :func:`test_rng` turns ``COCOTB_RANDOM_SEED`` and a test's name
into that test's generator, so a single cocotb test run alone (``testcase=``) sees the
same stimulus as in the full run.  Every seed is printed / logged.
"""

from __future__ import annotations

import logging
import os
import random
import zlib

import numpy as np

SEED_ENV = "QMAC_SEED"
_SEED_MASK = 0x7FFFFFFF

__all__ = ["SEED_ENV", "session_seed", "derive_seed", "test_rng"]


def session_seed() -> int:
    """The session seed from ``$QMAC_SEED``; drawn once and exported if unset.

    Same rule as ``conftest.py``: an unset seed is drawn fresh and written back to the
    environment, so every later call, subprocess and simulator sees the same value.

    Raises:
        ValueError: ``$QMAC_SEED`` is set but not an integer.
    """
    value = os.environ.get(SEED_ENV, "").strip()
    if not value:
        value = str(random.SystemRandom().randrange(1 << 31))
        os.environ[SEED_ENV] = value
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{SEED_ENV}: {value!r} is not an integer "
                         "(use make test SEED=<integer>)") from None


def derive_seed(*parts: object) -> int:
    """A 31-bit seed that is a stable function of the session seed and ``parts``.

    Args:
        parts: anything with a stable ``str()`` (a DUT name, a parameter tag, ...).
    """
    key = ":".join([str(session_seed())] + [str(p) for p in parts])
    return zlib.crc32(key.encode()) & _SEED_MASK


def test_rng(name: str, log: logging.Logger | None = None) -> np.random.Generator:
    """Inside a cocotb test: a numpy Generator for the test called ``name``.

    Its seed is ``crc32("<COCOTB_RANDOM_SEED>:<name>")`` -- the simulation's seed as the
    runner set it, so running one test alone (``testcase=``) replays the same stimulus.
    Both seeds are logged.

    Args:
        name: the test's name (usually the coroutine's ``__name__``).
        log: where to log the seed (default: the ``cocotb`` logger).
    """
    sim_seed = os.environ.get("COCOTB_RANDOM_SEED", "").strip()
    if not sim_seed:
        import cocotb  # no runner seed: fall back to the seed cocotb drew

        sim_seed = str(cocotb.RANDOM_SEED)
    seed = zlib.crc32(f"{sim_seed}:{name}".encode()) & _SEED_MASK
    (log or logging.getLogger("cocotb")).info(
        "[qmac] %s: seed %d (COCOTB_RANDOM_SEED=%s, QMAC_SEED=%s)",
        name, seed, sim_seed, os.environ.get(SEED_ENV, "?"))
    return np.random.default_rng(seed)
