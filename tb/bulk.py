"""Bulk simulation: the layer engine under Verilator with a C++ harness, no Python per cycle.

The cocotb path (``tb/engine.py`` on Icarus or Verilator) runs the engine at a few
thousand cycles per second because every beat passes through Python.  Here the host
prepares each layer exactly as the cocotb driver does (:class:`tb.engine.EngineGeometry`:
channel groups, padding, folded bias, expected outputs from ``pymodel``), writes it as a
job file -- the memory image of everything the engine is fed -- and the harness
``sim/verilator/engine_harness.cpp`` streams it into the Verilated RTL and writes every
output beat back (data, ``last`` flag, cycle).  The host compares them with the golden
model exactly (``==``) and reports the first mismatch the way the cocotb scoreboard does
(layer, output element, block / tile, row, column, cycle, both values).

:class:`BulkEngine` has the cocotb driver's ``run_layer`` coroutine, so the network
runner ``tb.network.run_network`` runs unchanged on it (under ``asyncio.run``), and any
artifact's conv / fully-connected layers run in bulk; :func:`run` / :func:`main` are
``make sim SIM=verilator``.

Why a hand-written harness: cocotb (the field's testbench library) is exactly the
per-cycle Python this mode avoids, and Verilator's own ``--binary`` / ``--main`` has no way
to read operands from files.  The harness does nothing but pin wiggling and file I/O;
every decision (tiling, padding, expected values) stays in Python, shared with cocotb.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np

from pymodel.ops.layers import fold_input_zero_point
from tb import kit
from tb.engine import EngineGeometry, GemmJob, LayerStats
from tb.kit.verilator import (COVERAGE_ARGS, TRACE_ARGS, coverage_enabled,
                              use_venv_verilator)
from tb.kit.verilator import coverage_file as new_coverage_file

__all__ = ["HARNESS", "build_harness", "BulkEngine", "BulkFailed", "run", "main"]

HARNESS = kit.SIM_DIR / "verilator" / "engine_harness.cpp"
HARNESS_VLT = kit.SIM_DIR / "verilator" / "engine_harness.vlt"
SOURCES = ("mac_*.v", "requant_*.v", "qlayer_engine.v")
PARAMETER_NAMES = ("ROWS", "COLS", "A_DEPTH", "W_DEPTH", "N_TILES_MAX")


class BulkFailed(kit.TestbenchFailed):
    """The harness stopped: an RTL ``$error``, a timeout, or the process died."""


def harness_run(proc: "subprocess.Popen[str]", read_reply: Callable[[], str], jpath: Path,
                opath: Path, harness: str, what: str, magic: bytes) -> tuple[bytes, float]:
    """Send one ``run JOB RESULT`` command to a bulk harness process and wait for it.

    Args:
        proc: the harness process (text-mode stdin); read_reply: its reply reader.
        jpath / opath: the job file written and the result file the harness writes.
        harness / what: names for the messages (the harness; the layer).
        magic: the 8-byte tag the result file starts with.

    Returns:
        The result file's bytes and the wall seconds the run took.

    Raises:
        BulkFailed: the harness is gone, replied with an error, or wrote no result file.
    """
    t0 = time.perf_counter()
    assert proc.stdin is not None
    try:
        proc.stdin.write(f"run {jpath} {opath}\n")
        proc.stdin.flush()
    except BrokenPipeError:
        raise BulkFailed(f"{harness} is gone (exit {proc.wait()})") from None
    reply = read_reply()
    seconds = time.perf_counter() - t0
    if not reply.startswith("ok "):
        raise BulkFailed(f"{what}: {reply[len('error '):]}")
    raw = opath.read_bytes()
    if raw[:8] != magic:
        raise BulkFailed(f"{what}: the harness wrote no result file")
    return raw, seconds


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (pytest-xdist workers share build directories)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_harness(parameters: Mapping[str, int], *, waves: bool = False,
                  coverage: bool | None = None, quiet: bool = True,
                  build_dir: Path | None = None) -> Path:
    """Verilate ``qlayer_engine`` with ``parameters`` and the harness; return the executable.

    Builds in ``sim/build/bulk-<parameter tag>[-fst][-cov]/``.  Verilator skips its
    step when sources and options are unchanged and ``make`` then has nothing to do, so
    a second call costs a fraction of a second; concurrent callers are serialized by a
    lock file.

    Args:
        parameters: ``ROWS``, ``COLS``, ``A_DEPTH``, ``W_DEPTH``, ``N_TILES_MAX``.
        waves: build with FST tracing (``--trace-fst``).
        coverage: build with line / toggle / expression coverage (default
            ``$QMAC_COVERAGE``).
        quiet: keep Verilator's and the compiler's output unless the build fails.
        build_dir: default ``sim/build/bulk-<tag>``.

    Raises:
        BulkFailed: Verilator or the C++ build failed (its output is in the message).
    """
    cov = coverage_enabled() if coverage is None else coverage
    root = use_venv_verilator()
    params = {k: int(parameters[k]) for k in PARAMETER_NAMES}
    tag = kit.param_tag(params) + ("-fst" if waves else "") + ("-cov" if cov else "")
    bdir = Path(build_dir) if build_dir is not None else kit.SIM_DIR / "build" / f"bulk-{tag}"
    exe = bdir / "engine_harness"
    cmd = [str(root / "bin" / "verilator"), "--cc", "--exe", "--build", "-j", "2",
           "--top-module", "qlayer_engine", "-Mdir", str(bdir), "-o", exe.name, "-Wno-fatal",
           "-CFLAGS", f"-DQMAC_ROWS={params['ROWS']} -DQMAC_COLS={params['COLS']}",
           "-MAKEFLAGS", "OPT_FAST=-O2"]
    cmd += [f"-G{k}={v}" for k, v in params.items()]
    if waves:
        cmd += TRACE_ARGS
    if cov:
        cmd += COVERAGE_ARGS
    cmd += [str(kit.RTL_DIR / "lint_waivers.vlt"), str(kit.SIM_DIR / "verilator" / "sim.vlt"),
            str(HARNESS_VLT)]
    cmd += [str(p) for p in kit.rtl_sources(*SOURCES)] + [str(HARNESS)]
    with _locked(bdir.with_name(bdir.name + ".lock")):
        proc = subprocess.run(cmd, cwd=kit.REPO_ROOT, capture_output=quiet, text=True)
    if proc.returncode != 0 or not exe.is_file():
        out = (proc.stdout or "") + (proc.stderr or "") if quiet else ""
        raise BulkFailed(f"bulk harness build failed (exit {proc.returncode}) in {bdir}:\n{out}")
    return exe


def _job_bytes(a: np.ndarray, w: np.ndarray, prm: np.ndarray, header: list[int]) -> bytes:
    """The job file (format in engine_harness.cpp): header, weights, parameters, acts."""
    return b"".join([b"QMACJOB1", np.asarray(header, "<u4").tobytes(),
                     np.ascontiguousarray(w, np.int8).tobytes(),
                     np.ascontiguousarray(prm, "<i4").tobytes(),
                     np.ascontiguousarray(a, np.int8).tobytes()])


def _hex8(v: int) -> str:
    return f"0x{v & 0xFF:02x}"


class BulkEngine(EngineGeometry):
    """One harness process around one Verilated ``qlayer_engine``; layers run back to back.

    Args:
        parameters: engine parameters (all of :data:`PARAMETER_NAMES`).
        waves: FST waveform of the whole run at ``trace`` (one continuous clock).
        trace: the FST path (required with ``waves``).
        coverage_file: where a coverage build writes its ``.dat`` (default
            ``sim/build/coverage/bulk-<tag>-<pid>-<n>.dat``).
        in_stall, out_stall: probability of an idle input cycle / of ``out_ready_i`` low
            (default 0: the network run streams at full speed, as the cocotb one does).
        seed: seed of those stalls.

    Use as a context manager (the process ends, the waveform and coverage are written).
    """

    def __init__(self, parameters: Mapping[str, int], *, waves: bool = False,
                 trace: Path | None = None, coverage_file: Path | None = None,
                 in_stall: float = 0.0, out_stall: float = 0.0, seed: int = 0) -> None:
        self.params = {k: int(parameters[k]) for k in PARAMETER_NAMES}
        self.rows, self.cols = self.params["ROWS"], self.params["COLS"]
        self.a_depth, self.w_depth = self.params["A_DEPTH"], self.params["W_DEPTH"]
        self.n_tiles_max = self.params["N_TILES_MAX"]
        for name, p in (("in_stall", in_stall), ("out_stall", out_stall)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name}: {p} must be in [0, 1)")
        self.in_ppm, self.out_ppm = round(in_stall * 1e6), round(out_stall * 1e6)
        self.seed = int(seed) & 0xFFFFFFFF
        self.jobs = 0
        self.sim_seconds = 0.0          # wall time inside the harness (streaming + I/O)
        self.cycles = 0                 # clock cycles simulated (all jobs, load included)
        cov = coverage_enabled()
        self.exe = build_harness(self.params, waves=waves, coverage=cov)
        self._tmp = tempfile.TemporaryDirectory(prefix="qmac-bulk-")
        args = [str(self.exe)]
        if waves:
            if trace is None:
                raise ValueError("trace: an FST path is required with waves=True")
            Path(trace).parent.mkdir(parents=True, exist_ok=True)
            args += ["--trace", str(trace)]
        if cov:
            cfile = coverage_file or new_coverage_file(self.exe.parent.name)
            cfile.parent.mkdir(parents=True, exist_ok=True)
            args.append(f"+verilator+coverage+file+{cfile}")
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, bufsize=1)
        self._expect_ready()

    # -- process ---------------------------------------------------------------------
    def _read_reply(self) -> str:
        """The next protocol line; anything else the simulator prints goes to stderr."""
        assert self._proc.stdout is not None
        while True:
            line = self._proc.stdout.readline()
            if not line:
                code = self._proc.wait()
                raise BulkFailed(f"bulk harness {self.exe} exited with status {code} "
                                 "(its output is above)")
            line = line.rstrip("\n")
            if line == "ready" or line.startswith(("ok ", "error ")):
                return line
            print(line, file=sys.stderr, flush=True)   # $display / $error of the RTL

    def _expect_ready(self) -> None:
        line = self._read_reply()
        if line != "ready":
            raise BulkFailed(f"bulk harness did not start: {line}")

    def close(self) -> None:
        """End the harness (writes the waveform and coverage); idempotent."""
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write("quit\n")
                self._proc.stdin.flush()
            except BrokenPipeError:
                pass
            self._proc.wait()
        self._tmp.cleanup()

    def __enter__(self) -> "BulkEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one job ---------------------------------------------------------------------
    def run_sync(self, job: GemmJob) -> tuple[np.ndarray, LayerStats]:
        """Load, stream and check one job that fits the engine (see :meth:`plan`).

        Returns:
            ``(outputs, stats)``: int8 ``[M, N]`` outputs (equal to the golden model's, or
            :class:`tb.kit.Mismatch` has been raised) and :class:`tb.engine.LayerStats`.

        Raises:
            tb.kit.Mismatch: an output element, or a ``last`` flag, differs; the message
                names the layer, the element, block / tile, row, column, cycle and both values.
            BulkFailed: timeout or RTL ``$error`` in the harness.
        """
        n_tiles, k_tile = self.plan(job)
        a, w, rq, expected = self.layout(job)
        r, c = self.rows, self.cols
        blocks = a.shape[0] // r
        bias = fold_input_zero_point(rq.bias, w, job.in_zero_point)
        n_ch = n_tiles * c
        prm = np.stack([bias.astype(np.int64), rq.m0.astype(np.int64),
                        rq.shift.astype(np.int64), np.full(n_ch, rq.out_zero_point),
                        np.full(n_ch, rq.act_min), np.full(n_ch, rq.act_max)], axis=1)
        # weight word t*K + k holds channels t*COLS .. +COLS-1 of tap k: [n_tiles, K, COLS]
        w_words = w.reshape(n_tiles, c, job.k).transpose(0, 2, 1)
        # activation beat b*K + k holds rows b*ROWS .. +ROWS-1 of tap k: [blocks, K, ROWS]
        a_beats = a.reshape(blocks, r, job.k).transpose(0, 2, 1)
        chunks = -(-job.k // k_tile)
        budget = 10 * blocks * (n_tiles + 1) * (job.k + chunks * (r + c + 16)) + 20_000
        header = [r, c, job.k, n_tiles, k_tile, blocks, min(budget, 0xFFFFFFFF),
                  self.in_ppm, self.out_ppm, (self.seed + self.jobs) & 0xFFFFFFFF]
        self.jobs += 1
        jpath = Path(self._tmp.name) / "job.bin"
        opath = Path(self._tmp.name) / "result.bin"
        jpath.write_bytes(_job_bytes(a_beats, w_words, prm.astype(np.int32), header))
        raw, seconds = harness_run(self._proc, self._read_reply, jpath, opath,
                                   f"bulk harness {self.exe}", f"layer {job.name!r}", b"QMACRES1")
        self.sim_seconds += seconds
        cycles, load_cycles, array_beats, beats = (int(v) for v in np.frombuffer(raw, "<u8", 4, 8))
        off = 40
        data = np.frombuffer(raw, np.int8, beats * c, off).reshape(beats, c)
        off += beats * c
        last = np.frombuffer(raw, np.uint8, beats, off)
        off += beats
        when = np.frombuffer(raw, "<u8", beats, off)
        self.cycles += cycles + load_cycles
        out = self._check(job, data, last, when, expected, blocks, n_tiles)
        stats = LayerStats(cycles=cycles, load_cycles=load_cycles, array_beats=array_beats,
                           macs=job.macs, slots=r * c)
        return out[: job.m, : job.n], stats

    def _check(self, job: GemmJob, data: np.ndarray, last: np.ndarray, when: np.ndarray,
               expected: np.ndarray, blocks: int, n_tiles: int) -> np.ndarray:
        """Outputs as ``[blocks*ROWS, n_tiles*COLS]``; Mismatch on the first difference.

        Beat order is block, tile, row (as ``qlayer_engine`` emits them).
        """
        r, c = self.rows, self.cols
        exp_beats = expected.reshape(blocks, r, n_tiles, c).transpose(0, 2, 1, 3).reshape(-1, c)
        bad_rows = np.flatnonzero((data.astype(np.int64) != exp_beats).any(axis=1))
        want_last = np.tile(np.arange(r) == r - 1, blocks * n_tiles)
        bad_last = np.flatnonzero(last.astype(bool) != want_last)
        if bad_rows.size or bad_last.size:
            beat = int(min(bad_rows[0] if bad_rows.size else 1 << 62,
                           bad_last[0] if bad_last.size else 1 << 62))
            b, t, i = beat // (n_tiles * r), beat // r % n_tiles, beat % r
            label = (f"layer {job.name!r} block {b} (rows {b * r}..{b * r + r - 1}) tile {t} "
                     f"(channels {t * c}..{t * c + c - 1})")
            row = b * r + i
            where = job.describe_row(row) if job.describe_row else f"row {row}"
            if bad_rows.size and bad_rows[0] == beat:
                lanes = np.flatnonzero(data[beat] != exp_beats[beat])
                col = int(lanes[0])
                e, g = int(exp_beats[beat, col]), int(data[beat, col])
                wrong = int(np.count_nonzero(data.astype(np.int64) != exp_beats))
                raise kit.Mismatch(
                    f"MISMATCH in {label}, row {i}, column {col}, cycle {int(when[beat])}: "
                    f"expected {e} ({_hex8(e)}), got {g} ({_hex8(g)}); {lanes.size} of {c} "
                    f"lanes differ in this row, {wrong} output elements in this layer.\n"
                    f"  expected row: {exp_beats[beat].tolist()}\n"
                    f"  received row: {data[beat].tolist()}\n"
                    f"  output element: layer {job.name!r}, {where}, channel {t * c + col} "
                    f"(GEMM row {row}, column {t * c + col})")
            raise kit.Mismatch(f"{label}, row {i}, cycle {int(when[beat])}: last flag is "
                               f"{int(last[beat])}, expected {int(want_last[beat])} (the item "
                               f"has {r} rows)")
        return data.reshape(blocks, n_tiles, r, c).transpose(0, 2, 1, 3).reshape(blocks * r, -1)

    async def run(self, job: GemmJob) -> tuple[np.ndarray, LayerStats]:
        """:meth:`run_sync` as a coroutine (the interface of ``EngineEnv.run``)."""
        return self.run_sync(job)

    async def run_layer(self, job: GemmJob) -> tuple[np.ndarray, LayerStats]:
        """:meth:`run`, split over output channel groups if the layer does not fit (as
        ``EngineEnv.run_layer``); outputs stitched back, figures summed."""
        return self.stitch([self.run_sync(group) for group in self.channel_groups(job)])


# ------------------------------------------------------------------------ network job
def default_parameters() -> dict[str, int]:
    """The engine of ``make sim``: ``tb.test_qlayer_engine.DEFAULT_PARAMETERS``."""
    from tb.test_qlayer_engine import DEFAULT_PARAMETERS
    return {k: int(DEFAULT_PARAMETERS[k]) for k in PARAMETER_NAMES}


def waves_path(artifact: str | Path, parameters: Mapping[str, int]) -> Path:
    """``sim/build/network-<artifact stem>-<tag>-verilator/qlayer_engine.fst``."""
    return (kit.SIM_DIR / "build" / f"network-{Path(artifact).stem}-{kit.param_tag(parameters)}"
            "-verilator" / "qlayer_engine.fst")


def run(artifact: str | Path | None = None, *, images: int = 16, waves: bool = False,
        parameters: Mapping[str, int] | None = None, first: int = 0):
    """Run ``artifact`` on digits test images ``first .. first+images-1`` in bulk.

    Returns:
        A ``tb.network.NetworkReport`` (the ``make sim`` tables), ``simulator`` naming
        the bulk harness and ``sim_seconds`` the wall time spent in the harness.

    Raises:
        ValueError: bad ``images`` / ``artifact`` (one line).
        tb.kit.TestbenchFailed: a mismatch, a timeout or an RTL ``$error``; the run is
            repeated with waves first (unless it had them), so the waveform of the failure
            is left (path in the message).
    """
    from pymodel import datasets
    from pymodel.graph.artifact import load_artifact
    from pymodel.graph.inference import quantize_input, run_network as golden_network
    from pymodel.graph.network import load_network
    from tb.network import NetworkReport, run_network
    from tb.test_network import DEFAULT_ARTIFACT, FLOAT_NETWORK

    artifact = Path(artifact or DEFAULT_ARTIFACT)
    n_test = len(datasets.digits("test"))
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise ValueError(f"IMAGES / --images: {images!r} must be a positive integer")
    if first + images > n_test:
        raise ValueError(f"IMAGES / --images: {images} exceeds the {n_test} digits test images")
    qnet = load_artifact(artifact)
    params = dict(default_parameters(), **(parameters or {}))
    test = datasets.digits("test")
    x, y = test.x[first:first + images], test.y[first:first + images]
    xq = quantize_input(qnet, x)
    fst = waves_path(artifact, params)

    def simulate(with_waves: bool):
        with BulkEngine(params, waves=with_waves, trace=fst) as eng:
            out, layers = asyncio.run(run_network(eng, qnet, xq))
            return out, layers, eng.sim_seconds

    try:
        out, layers, seconds = simulate(waves)
    except (kit.Mismatch, kit.TestbenchFailed) as exc:
        if not waves:
            print(f"[qmac] bulk run failed; re-running it with waves to leave the waveform "
                  f"in {fst}", file=sys.stderr, flush=True)
            try:
                simulate(True)
            except (kit.Mismatch, kit.TestbenchFailed):
                pass
        raise kit.TestbenchFailed(f"{exc}\nwaveform: {fst} (open with: gtkwave {fst} "
                                  "sim/qlayer_engine.gtkw)") from None
    golden_out = golden_network(qnet, xq)[-1]
    float_out = load_network(FLOAT_NETWORK).forward(x)
    return NetworkReport(
        network=qnet.name, images=images, engine=params, layers=layers,
        labels=y.tolist(), rtl_pred=out.argmax(axis=1).tolist(),
        golden_pred=golden_out.argmax(axis=1).tolist(),
        float_pred=float_out.argmax(axis=1).tolist(), sim_seconds=seconds,
        simulator="Verilator (bulk C++ harness)")


def main(images: int = 16, waves: bool = False, artifact: str | Path | None = None) -> int:
    """``make sim SIM=verilator``: the network job in bulk; prints the ``make sim`` tables.

    Exit status 1 if any output element differs from the golden model.
    """
    from tb.network import format_report
    t0 = time.perf_counter()
    rep = run(artifact, images=images, waves=waves)
    wall = time.perf_counter() - t0
    print(format_report(rep))
    print(f"wall time (build, golden model, simulation) {wall:.1f} s")
    if waves:
        from tb.test_network import DEFAULT_ARTIFACT
        fst = waves_path(artifact or DEFAULT_ARTIFACT, rep.engine).relative_to(kit.REPO_ROOT)
        print(f"\nwaveform: {fst}\nopen with: gtkwave {fst} sim/qlayer_engine.gtkw")
    bad = sum(l.mismatches for l in rep.layers)
    return 1 if bad or rep.rtl_pred != rep.golden_pred else 0


if __name__ == "__main__":
    sys.exit(main())
