"""The Verilator bulk path (tb/bulk.py + sim/verilator/engine_harness.cpp).

The harness streams job files into the Verilated layer engine; the host checks every
output element against ``pymodel`` (``==``).  These tests run random layers through it
with random stalls on both streams, check that a wrong output, a wrong ``last`` flag and
an RTL ``$error`` each fail loudly, and that bad arguments end in one line (exit 2).
The whole-network comparison with the cocotb path is in tests/test_rtl_network.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from tb import bulk, kit
from tb.engine import EngineGeometry, GemmJob
from tb.test_qlayer_engine import random_job, random_rq

pytestmark = [pytest.mark.rtl, pytest.mark.slow]


def _expected(eng: bulk.BulkEngine, job: GemmJob) -> np.ndarray:
    return np.concatenate([eng.layout(g)[3][: g.m, : g.n] for g in eng.channel_groups(job)],
                          axis=1)


def test_bulk_random_layers_with_stalls(rng: np.random.Generator) -> None:
    """Random layers (odd sizes, K chunks, partial tiles, INT4, extreme requantize
    parameters, more channels than the engine holds) with 30 % idle cycles on the input
    and 30 % back-pressure on the output: every output == the golden model's."""
    with bulk.BulkEngine(bulk.default_parameters(), in_stall=0.3, out_stall=0.3,
                         seed=int(rng.integers(1 << 31))) as eng:
        jobs = [random_job(rng, eng, f"random{i}") for i in range(12)]
        big = GemmJob(name="wide", cols=rng.integers(-128, 128, (11, 40)).astype(np.int8),
                      w2d=rng.integers(-127, 128, (eng.n_tiles_max * eng.cols + 5, 40)).astype(np.int8),
                      in_zero_point=-3, rq=random_rq(rng, eng.n_tiles_max * eng.cols + 5, extreme=True),
                      check_bound=False)   # extreme biases: int32 wraparound, as the RTL
        jobs.append(big)
        for job in jobs:
            out, st = eng.run_sync(job) if job is not big else _run(eng, job)
            assert np.array_equal(out, _expected(eng, job)), job.name
            assert st.macs == job.macs and st.cycles > 0 and st.array_beats > 0
        assert eng.jobs == len(jobs) + 1     # the wide layer ran as two channel groups


def test_bulk_longest_k(rng: np.random.Generator) -> None:
    """Layers that fill the weight buffer: K = 3/4 W_DEPTH and K = W_DEPTH taps on one
    channel tile, then K = W_DEPTH / 2 on two tiles (every bit of the K counters and weight
    addresses that a legal layer can set; found by `make coverage`)."""
    with bulk.BulkEngine(bulk.default_parameters()) as eng:
        for k, n in ((3 * eng.w_depth // 4, eng.cols), (eng.w_depth, eng.cols),
                     (eng.w_depth // 2, 2 * eng.cols)):
            job = GemmJob(name=f"K{k}", cols=rng.integers(-128, 128, (eng.rows + 1, k)).astype(np.int8),
                          w2d=rng.integers(-7, 8, (n, k)).astype(np.int8), in_zero_point=5,
                          rq=random_rq(rng, n))
            out, _ = eng.run_sync(job)
            assert np.array_equal(out, _expected(eng, job)), job.name


def _run(eng: bulk.BulkEngine, job: GemmJob):
    import asyncio
    return asyncio.run(eng.run_layer(job))


def test_bulk_reports_a_mismatch(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A golden value off by one is reported with layer, element, tile, row, column, cycle."""
    real = EngineGeometry.layout

    def off_by_one(self, job):
        a, w, rq, expected = real(self, job)
        expected = expected.copy()
        expected[job.m - 1, job.n - 1] += 1
        return a, w, rq, expected

    monkeypatch.setattr(EngineGeometry, "layout", off_by_one)
    with bulk.BulkEngine(bulk.default_parameters()) as eng:
        job = random_job(rng, eng, "broken")
        job.describe_row = lambda m: f"image {m}"
        with pytest.raises(kit.Mismatch) as exc:
            eng.run_sync(job)
    msg = str(exc.value)
    print(msg)
    row = (job.m - 1) % eng.rows
    col = (job.n - 1) % eng.cols
    assert f"MISMATCH in layer 'broken'" in msg and f"row {row}, column {col}, cycle " in msg
    assert f"image {job.m - 1}, channel {job.n - 1}" in msg


def test_bulk_rtl_error_fails(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A configuration the RTL rejects with $error (K_TILE > A_DEPTH) fails the run."""
    eng_params = bulk.default_parameters()
    monkeypatch.setattr(EngineGeometry, "plan",
                        lambda self, job: (-(-job.n // self.cols), self.a_depth + 1))
    with bulk.BulkEngine(eng_params) as eng:
        job = random_job(rng, eng, "bad_k_tile")
        job.cols = job.cols[:, :1].copy()
        job.w2d = job.w2d[:, :1].copy()
        with pytest.raises(bulk.BulkFailed, match="the RTL reported an error"):
            eng.run_sync(job)


@pytest.mark.parametrize("args,needle", [(["--images", "0"], "IMAGES / --images: 0"),
                                         (["--images", "541"], "exceeds the 540"),
                                         (["--sim", "modelsim"], "'modelsim' is not a simulator")])
def test_bulk_bad_arguments(args: list[str], needle: str, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad IMAGES / SIM: one line naming the argument, exit 2, no traceback (``make sim``'s
    entry point, called in-process)."""
    from tb import run as tb_run
    monkeypatch.setenv("QMAC_SIM", "icarus")    # tb.run exports the simulator it chose
    assert tb_run.main(["--sim", "verilator", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
