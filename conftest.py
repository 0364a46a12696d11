"""Project-wide pytest set-up: one seed for every random test.

The session seed comes from ``QMAC_SEED`` (``make test SEED=n``) or is drawn fresh and
exported, so that pytest-xdist workers, Hypothesis and every cocotb simulation see the
same number.  It is printed in the report header; each test derives its own seed from
the session seed and its node id, so ``make test SEED=n`` reproduces every test.
"""

from __future__ import annotations

import os
import random
import zlib

import numpy as np
import pytest
from hypothesis import settings

# Hypothesis: no example database (runs depend on the seed only), no timing deadline
# (tests assert behaviour, not timing).
settings.register_profile("qmac", database=None, deadline=None, print_blob=True)
settings.load_profile("qmac")


def session_seed() -> int:
    """The regression's session seed (``QMAC_SEED``), drawn once if unset."""
    value = os.environ.get("QMAC_SEED", "").strip()
    if not value:
        value = str(random.SystemRandom().randrange(1 << 31))
        os.environ["QMAC_SEED"] = value  # inherited by xdist workers and simulators
    try:
        return int(value)
    except ValueError:
        raise pytest.UsageError(f"QMAC_SEED / SEED: {value!r} is not an integer") from None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    seed = session_seed()
    if getattr(config.option, "hypothesis_seed", None) is None:
        config.option.hypothesis_seed = seed


def pytest_report_header(config: pytest.Config) -> str:
    seed = session_seed()
    return f"qmac seed: {seed}  (reproduce with: make test SEED={seed})"


def derive_test_seed(nodeid: str) -> int:
    """Seed of one test: a stable function of the session seed and the test's node id."""
    return zlib.crc32(f"{session_seed()}:{nodeid}".encode()) & 0x7FFFFFFF


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """This test's seed (printed, so a failure report shows it)."""
    s = derive_test_seed(request.node.nodeid)
    print(f"[qmac] seed={s} (session QMAC_SEED={session_seed()})")
    return s


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    """A numpy Generator seeded with this test's seed."""
    return np.random.default_rng(seed)
