"""Bulk simulation of the window and element-wise units, and of a whole imported model.

The sibling of :mod:`tb.bulk` (the layer engine's C++ harness) for ``rtl/window_engine.v``
(depthwise conv, pooling, MEAN) and ``rtl/eltwise_engine.v`` (ADD / SUB / MUL): one C++
harness, ``sim/verilator/unit_harness.cpp``, built per unit.  The host cuts each layer
exactly as the cocotb drivers do -- :class:`tb.window.WindowEnv`'s own ``jobs`` /
``registers`` / ``group_load`` planning, :class:`tb.test_eltwise_engine.EltwiseEnv`'s
loads and padding -- and writes it as *segments* (what the cocotb driver does between two
drains: register, weight and parameter writes, then input beats streamed back to back);
the harness plays them with no Python per cycle and returns every output beat with its
cycle; the host compares them with the golden model (``==``) and names the first mismatch
(layer, output pixel or element, channel, cycle, both values).

:class:`BulkWindow` and :class:`BulkEltwise` offer the cocotb drivers' interfaces
(``run_layer``, ``run_tensor``, ``lanes``, ``clock.cycle()``), so the network walker
:func:`tb.units.run_units_network` -- the one the cocotb path uses on ``qmac_units`` --
runs unchanged with them and :class:`tb.bulk.BulkEngine` (``make sim SIM=verilator
MODEL=...``, :func:`run_model`).

Why a hand-written harness: as :mod:`tb.bulk` says -- cocotb is the per-cycle Python this
path avoids and Verilator's ``--binary`` main cannot read operands from files.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from tb import kit
from tb.bulk import BulkEngine, BulkFailed, _locked, harness_run
from tb.kit.verilator import (COVERAGE_ARGS, TRACE_ARGS, coverage_enabled,
                              use_venv_verilator)
from tb.kit.verilator import coverage_file as new_coverage_file

__all__ = ["UNITS", "build_unit", "BulkWindow", "BulkEltwise", "Segment", "run_model",
           "main"]

HARNESS = kit.SIM_DIR / "verilator" / "unit_harness.cpp"

# unit -> (top module, RTL sources, C++ define, default parameters)
UNITS: dict[str, tuple[str, tuple[str, ...], str, dict[str, int]]] = {
    "window": ("window_engine", ("window_*.v", "requant_*.v"), "QMAC_UNIT_WINDOW",
               {"LANES": 8, "H_MAX": 32, "W_MAX": 32, "TAPS_MAX": 25, "GROUPS_MAX": 8,
                "RES_FIFO": 4}),
    "eltwise": ("eltwise_engine", ("eltwise_*.v", "requant_*.v"), "QMAC_UNIT_ELTWISE",
                {"LANES": 8, "RES_FIFO": 8}),
}
KIND_CFG, KIND_WEIGHT, KIND_PRM = 0, 1, 2


def build_unit(unit: str, parameters: Mapping[str, int] | None = None, *, waves: bool = False,
               coverage: bool | None = None) -> Path:
    """Verilate ``unit`` (``"window"`` / ``"eltwise"``) with the harness; return the executable.

    Builds in ``sim/build/bulk-<top>-<parameter tag>[-fst][-cov]/``; a second call with
    unchanged sources and options costs a fraction of a second (Verilator and ``make``
    skip); concurrent callers are serialized by a lock file.

    Raises:
        BulkFailed: Verilator or the C++ build failed (its output is in the message).
    """
    top, sources, define, defaults = UNITS[unit]
    params = dict(defaults, **{k: int(v) for k, v in (parameters or {}).items()})
    cov = coverage_enabled() if coverage is None else coverage
    root = use_venv_verilator()
    tag = kit.param_tag(params) + ("-fst" if waves else "") + ("-cov" if cov else "")
    bdir = kit.SIM_DIR / "build" / f"bulk-{top}-{tag}"
    exe = bdir / "unit_harness"
    cmd = [str(root / "bin" / "verilator"), "--cc", "--exe", "--build", "-j", "2",
           "--top-module", top, "-Mdir", str(bdir), "-o", exe.name, "-Wno-fatal",
           "-CFLAGS", f"-D{define} -DQMAC_LANES={params['LANES']}",
           "-MAKEFLAGS", "OPT_FAST=-O2"]
    cmd += [f"-G{k}={v}" for k, v in params.items()]
    if waves:
        cmd += TRACE_ARGS
    if cov:
        cmd += COVERAGE_ARGS
    cmd += [str(kit.RTL_DIR / "lint_waivers.vlt"), str(kit.SIM_DIR / "verilator" / "sim.vlt")]
    cmd += [str(p) for p in kit.rtl_sources(*sources)] + [str(HARNESS)]
    with _locked(bdir.with_name(bdir.name + ".lock")):
        proc = subprocess.run(cmd, cwd=kit.REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0 or not exe.is_file():
        raise BulkFailed(f"{top} bulk harness build failed (exit {proc.returncode}) in "
                         f"{bdir}:\n{proc.stdout}{proc.stderr}")
    return exe


@dataclass
class Segment:
    """What a cocotb driver does between two drains (see ``unit_harness.cpp``).

    Attributes:
        writes: ``(kind, fields[7], data[LANES])`` register / weight / parameter writes.
        beats: int8 input beats ``[n, in_bytes]`` (window: a pixel's LANES channels;
            eltwise: a, b and the ``a_last`` flag).
        expected: int64 ``[n_out, LANES]`` output beats the golden model predicts.
        last: bool ``[n_out]`` expected ``out_last_o``.
        where: ``[n_out]`` text naming each output beat (for a mismatch message).
    """

    writes: list[tuple[int, tuple[int, ...], np.ndarray | None]] = field(default_factory=list)
    beats: list[np.ndarray] = field(default_factory=list)
    expected: list[np.ndarray] = field(default_factory=list)
    last: list[bool] = field(default_factory=list)
    where: list[str] = field(default_factory=list)


class _Cycles:
    """``clock.cycle()`` of a bulk unit: the harness cycles simulated so far."""

    def __init__(self) -> None:
        self.n = 0

    def cycle(self) -> int:
        return self.n


class _UnitProcess:
    """One harness process around one Verilated unit; jobs run back to back.

    Args:
        unit: ``"window"`` or ``"eltwise"``.
        parameters: the unit's parameters (defaults: ``UNITS``).
        waves, trace: an FST of the whole run at ``trace``.
        in_stall, out_stall: probability of an idle input cycle / ``out_ready_i`` low.
        seed: seed of those stalls.
    """

    def __init__(self, unit: str, parameters: Mapping[str, int] | None = None, *,
                 waves: bool = False, trace: Path | None = None, in_stall: float = 0.0,
                 out_stall: float = 0.0, seed: int = 0) -> None:
        self.unit = unit
        self.top = UNITS[unit][0]
        self.params = dict(UNITS[unit][3], **{k: int(v) for k, v in (parameters or {}).items()})
        self.lanes = self.params["LANES"]
        self.in_bytes = self.lanes if unit == "window" else 2 * self.lanes + 1
        for name, p in (("in_stall", in_stall), ("out_stall", out_stall)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name}: {p} must be in [0, 1)")
        self.in_ppm, self.out_ppm = round(in_stall * 1e6), round(out_stall * 1e6)
        self.seed = int(seed) & 0xFFFFFFFF
        self.jobs = 0
        self.sim_seconds = 0.0
        self.clock = _Cycles()
        cov = coverage_enabled()
        self.exe = build_unit(unit, self.params, waves=waves, coverage=cov)
        self._tmp = tempfile.TemporaryDirectory(prefix=f"qmac-bulk-{unit}-")
        args = [str(self.exe)]
        if waves:
            if trace is None:
                raise ValueError("trace: an FST path is required with waves=True")
            Path(trace).parent.mkdir(parents=True, exist_ok=True)
            args += ["--trace", str(trace)]
        if cov:
            cfile = new_coverage_file(self.exe.parent.name)
            args.append(f"+verilator+coverage+file+{cfile}")
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, bufsize=1)
        if self._reply() != "ready":
            raise BulkFailed(f"{self.top} bulk harness did not start")

    def _reply(self) -> str:
        assert self._proc.stdout is not None
        while True:
            line = self._proc.stdout.readline()
            if not line:
                code = self._proc.wait()
                raise BulkFailed(f"{self.top} bulk harness {self.exe} exited with status "
                                 f"{code} (its output is above)")
            line = line.rstrip("\n")
            if line == "ready" or line.startswith(("ok ", "error ")):
                return line
            print(line, file=sys.stderr, flush=True)   # $display / $error of the RTL

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

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def play(self, name: str, segs: list[Segment]) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Run ``segs``, check every output beat; returns the beats ``[n_out, LANES]``
        and ``(load_cycles, cycles)`` per segment.

        Raises:
            tb.kit.Mismatch: the first output beat (or ``last`` flag) that differs.
            BulkFailed: timeout, RTL ``$error``, the harness died.
        """
        lanes = self.lanes
        parts = [b"QMACUNT1", np.array([lanes, self.in_bytes, len(segs), self.in_ppm,
                                        self.out_ppm, (self.seed + self.jobs) & 0xFFFFFFFF],
                                       "<u4").tobytes()]
        self.jobs += 1
        for s in segs:
            n_in, n_out = len(s.beats), len(s.expected)
            budget = 40 * (n_in + n_out) + 20 * n_out * 32 + 5_000
            parts.append(np.array([len(s.writes), n_in, n_out, budget], "<u4").tobytes())
            for kind, f, data in s.writes:
                rec = np.zeros(8, "<i8")
                rec[0], rec[1:1 + len(f)] = kind, f
                parts.append((rec & 0xFFFFFFFF).astype("<u4").tobytes())
                d = np.zeros(lanes, np.int64) if data is None else np.asarray(data, np.int64)
                parts.append((d & 0xFF).astype(np.uint8).tobytes())
            if n_in:
                parts.append((np.asarray(s.beats, np.int64) & 0xFF).astype(np.uint8).tobytes())
        jpath, opath = Path(self._tmp.name) / "job.bin", Path(self._tmp.name) / "result.bin"
        jpath.write_bytes(b"".join(parts))
        raw, seconds = harness_run(self._proc, self._reply, jpath, opath,
                                   f"{self.top} bulk harness", f"{self.top}, layer {name!r}",
                                   b"QMACURS1")
        self.sim_seconds += seconds
        n_seg, beats = (int(v) for v in np.frombuffer(raw, "<u8", 2, 8))
        figs = np.frombuffer(raw, "<u8", 2 * n_seg, 24).reshape(n_seg, 2)
        off = 24 + 16 * n_seg
        data = np.frombuffer(raw, np.int8, beats * lanes, off).reshape(beats, lanes)
        off += beats * lanes
        last = np.frombuffer(raw, np.uint8, beats, off)
        off += beats
        when = np.frombuffer(raw, "<u8", beats, off)
        self.clock.n += int(figs.sum())
        exp = np.concatenate([np.asarray(s.expected, np.int64).reshape(-1, lanes) for s in segs])
        want_last = np.concatenate([np.asarray(s.last, bool) for s in segs])
        where = [w for s in segs for w in s.where]
        self._check(name, data, last, when, exp, want_last, where)
        return data, [(int(a), int(b)) for a, b in figs]

    def _check(self, name: str, data: np.ndarray, last: np.ndarray, when: np.ndarray,
               exp: np.ndarray, want_last: np.ndarray, where: list[str]) -> None:
        bad = np.flatnonzero((data.astype(np.int64) != exp).any(axis=1))
        bad_last = np.flatnonzero(last.astype(bool) != want_last)
        if not bad.size and not bad_last.size:
            return
        beat = int(min(bad[0] if bad.size else 1 << 62, bad_last[0] if bad_last.size else 1 << 62))
        if bad.size and bad[0] == beat:
            lanes = np.flatnonzero(data[beat] != exp[beat])
            col = int(lanes[0])
            e, g = int(exp[beat, col]), int(data[beat, col])
            wrong = int(np.count_nonzero(data.astype(np.int64) != exp))
            raise kit.Mismatch(
                f"MISMATCH in {self.top} layer {name!r}, {where[beat]}, column {col}, cycle "
                f"{int(when[beat])}: expected {e} (0x{e & 0xFF:02x}), got {g} (0x{g & 0xFF:02x}); "
                f"{lanes.size} of {self.lanes} lanes differ in this beat, {wrong} output "
                f"elements in this layer.\n  expected beat: {exp[beat].tolist()}\n"
                f"  received beat: {data[beat].tolist()}")
        raise kit.Mismatch(f"{self.top} layer {name!r}, {where[beat]}, cycle {int(when[beat])}: "
                           f"out_last_o is {int(last[beat])}, expected {int(want_last[beat])}")


class BulkWindow(_UnitProcess):
    """``window_engine`` in bulk with :class:`tb.window.WindowEnv`'s ``run_layer``."""

    def __init__(self, parameters: Mapping[str, int] | None = None, **kw: Any) -> None:
        super().__init__("window", parameters, **kw)
        self.h_max, self.w_max = self.params["H_MAX"], self.params["W_MAX"]
        self.taps_max, self.groups_max = self.params["TAPS_MAX"], self.params["GROUPS_MAX"]
        self._cfg: dict[int, int] = {}       # last value written to each register

    def segments(self, layer: Any, g: Any) -> tuple[list[Segment], list[Any], dict]:
        """The layer's segments (the cocotb driver's jobs, loads and drains), its jobs,
        and the stats the driver counts without the simulator (``macs``, ``outputs``)."""
        from tb.window import WindowEnv
        jobs = WindowEnv.jobs(self, layer, g)
        segs: list[Segment] = []
        loaded = None
        macs = outputs = 0
        pad_value = WindowEnv._pad_lane_value(layer)
        for job in jobs:
            regs = WindowEnv.registers(self, layer, job)
            if not segs or loaded != job.g or any(self._cfg.get(a) != v for a, v in regs.items()):
                seg = Segment()
                if loaded != job.g:
                    words, prm = WindowEnv.group_load(self, layer, job.g)
                    seg.writes += [(KIND_WEIGHT, (t,), w) for t, w in enumerate(words)]
                    seg.writes += [(KIND_PRM, tuple(int(v) for v in p), None) for p in prm]
                    loaded = job.g
                for addr, value in regs.items():
                    if self._cfg.get(addr) != value:
                        seg.writes.append((KIND_CFG, (addr, value), None))
                        self._cfg[addr] = value
                segs.append(seg)
            seg = segs[-1]
            c0 = job.g * self.lanes
            real = min(self.lanes, layer.channels - c0)
            x = layer.x[job.n, job.iy[0]:job.iy[1], job.ix[0]:job.ix[1], c0:c0 + real]
            px = np.zeros((x.shape[0] * x.shape[1], self.lanes), np.int64)
            px[:, :real] = x.reshape(-1, real)
            seg.beats.extend(px)
            ys, xs = np.meshgrid(np.arange(*job.oy), np.arange(*job.ox), indexing="ij")
            exp = np.full((ys.size, self.lanes), pad_value, np.int64)
            exp[:, :real] = g.out[job.n, ys.ravel(), xs.ravel(), c0:c0 + real]
            seg.expected.extend(exp)
            seg.last.extend([False] * (ys.size - 1) + [True])
            seg.where.extend(f"output pixel (image {job.n}, y {oy}, x {ox}), channels "
                             f"{c0}..{c0 + self.lanes - 1}" for oy, ox in zip(ys.ravel(), xs.ravel()))
            inside = g.inside[job.oy[0]:job.oy[1], job.ox[0]:job.ox[1]]
            macs += real * (int(inside.size) if layer.op == "dw" else int(inside.sum()))
            outputs += ys.size * real
        return segs, jobs, {"macs": macs, "outputs": outputs}

    def run_layer_sync(self, layer: Any) -> tuple[np.ndarray, Any, Any]:
        """Run and check a whole layer; returns ``(outputs, WindowStats, Golden)``."""
        from tb.window import WindowStats, golden
        g = golden(layer)
        segs, jobs, counts = self.segments(layer, g)
        beats, figs = self.play(layer.name, segs)
        out = np.zeros(g.out.shape, np.int64)
        i = 0
        for job in jobs:
            c0 = job.g * self.lanes
            real = min(self.lanes, layer.channels - c0)
            n = (job.oy[1] - job.oy[0]) * (job.ox[1] - job.ox[0])
            out[job.n, job.oy[0]:job.oy[1], job.ox[0]:job.ox[1], c0:c0 + real] = \
                beats[i:i + n, :real].reshape(job.oy[1] - job.oy[0], job.ox[1] - job.ox[0], real)
            i += n
        # cycles as WindowEnv._drain counts them: from the edge after the segment's last
        # write to the last output beat, inclusive (one more than the harness's span)
        st = WindowStats(lanes=self.lanes, jobs=len(jobs), cycles=sum(c + 1 for _, c in figs),
                         load_cycles=sum(l for l, _ in figs), **counts)
        out = out.astype(np.int8)
        if not np.array_equal(out, g.out):
            raise kit.Mismatch(f"layer {layer.name!r}: assembled outputs differ")
        return out, st, g

    async def run_layer(self, layer: Any) -> tuple[np.ndarray, Any, Any]:
        """:meth:`run_layer_sync` as a coroutine (``WindowEnv.run_layer``'s interface)."""
        return self.run_layer_sync(layer)


class BulkEltwise(_UnitProcess):
    """``eltwise_engine`` in bulk with ``EltwiseEnv``'s ``run_tensor`` and ``clock``."""

    def __init__(self, parameters: Mapping[str, int] | None = None, **kw: Any) -> None:
        super().__init__("eltwise", parameters, **kw)

    def segment(self, name: str, op: str, x1: np.ndarray, x2: np.ndarray, p: Any) -> Segment:
        """``EltwiseEnv.load`` + ``queue``: the writes, the padded beats, the expected ones."""
        from pymodel.ops.eltwise_stages import eltwise_engine
        from tb.test_eltwise_engine import OP_CODE
        seg = Segment()
        regs = {0: OP_CODE[op], 1: p.in1_zero_point & 0xFF, 2: p.in2_zero_point & 0xFF}
        if op != "mul":
            regs.update({3: p.in1_multiplier, 4: p.in1_shift & 0xFFFFFFFF,
                         5: p.in2_multiplier, 6: p.in2_shift & 0xFFFFFFFF})
        seg.writes += [(KIND_CFG, (a, v), None) for a, v in regs.items()]
        seg.writes += [(KIND_PRM, (lane, 0, p.out_multiplier, p.out_shift & 0x3F,
                                   p.out_zero_point & 0xFF, p.act_min & 0xFF, p.act_max & 0xFF), None)
                       for lane in range(self.lanes)]
        n, lanes = x1.size, self.lanes
        beats = -(-n // lanes)
        pad = beats * lanes - n
        xa = np.concatenate([x1.ravel(), np.zeros(pad, np.int8)])
        xb = np.concatenate([x2.ravel(), np.zeros(pad, np.int8)])
        last = np.zeros((beats, 1), np.int64)
        last[-1] = 1
        seg.beats = list(np.concatenate([xa.reshape(beats, lanes), xb.reshape(beats, lanes), last],
                                        axis=1).astype(np.int64))
        seg.expected = list(np.asarray(eltwise_engine(xa, xb, op, p), np.int64).reshape(beats, lanes))
        seg.last = [i == beats - 1 for i in range(beats)]
        seg.where = [f"op {op} beat {i} (elements {i * lanes}..{i * lanes + lanes - 1})"
                     for i in range(beats)]
        return seg

    def run_tensor_sync(self, name: str, op: str, x1: np.ndarray, x2: np.ndarray,
                        p: Any) -> np.ndarray:
        """Run and check one tensor pair; returns the unit's int8 outputs, x1's shape."""
        beats, _ = self.play(name, [self.segment(name, op, x1, x2, p)])
        return beats.ravel()[: x1.size].astype(np.int8).reshape(x1.shape)

    async def run_tensor(self, name: str, op: str, x1: np.ndarray, x2: np.ndarray,
                         p: Any) -> np.ndarray:
        """:meth:`run_tensor_sync` as a coroutine (``EltwiseEnv.run_tensor``'s interface)."""
        return self.run_tensor_sync(name, op, x1, x2, p)


# --------------------------------------------------------------------- a whole model
GEMM_PARAMETERS = {"ROWS": 8, "COLS": 8, "A_DEPTH": 64, "W_DEPTH": 2048, "N_TILES_MAX": 8}


def waves_dir(model: str | Path) -> Path:
    """``sim/build/units-<model stem>-verilator/``: the run's FSTs (one per unit)."""
    return kit.SIM_DIR / "build" / f"units-{Path(model).stem}-verilator"


def _simulate(model: str, first: int, images: int, waves: bool, tag: str) -> dict:
    """Images ``first .. first+images-1`` of ``model`` through the three bulk units.

    Returns a JSON-able dict: ``layers`` (``LayerReport`` dicts), ``out`` (the RTL's int8
    output, list), ``sim_seconds``.  Raises :class:`tb.kit.Mismatch` / ``BulkFailed``.
    """
    from tb.test_units_network import load_model
    from tb.units import Units, run_units_network
    qnet, x, _ = load_model(model)
    xq = np.ascontiguousarray(x[first:first + images]).astype(np.int8)
    d = waves_dir(model)
    fst = {u: d / f"{top}{tag}.fst" for u, top in (("gemm", "qlayer_engine"),
                                                    ("window", "window_engine"),
                                                    ("eltwise", "eltwise_engine"))}
    with BulkEngine(GEMM_PARAMETERS, waves=waves, trace=fst["gemm"]) as gemm, \
            BulkWindow(waves=waves, trace=fst["window"]) as win, \
            BulkEltwise(waves=waves, trace=fst["eltwise"]) as elt:
        out, layers = asyncio.run(run_units_network(Units(gemm, win, elt), qnet, xq))
        secs = gemm.sim_seconds + win.sim_seconds + elt.sim_seconds
    return {"layers": [asdict(l) for l in layers], "out": out.tolist(), "sim_seconds": secs}


def _simulate_part(args: tuple) -> dict:
    """:func:`_simulate` in a worker process; a failure comes back as a message."""
    try:
        return _simulate(*args)
    except (kit.Mismatch, kit.TestbenchFailed) as exc:
        return {"error": str(exc), "kind": type(exc).__name__}


def run_model(model: str | Path, images: int = 1, *, waves: bool = False,
              parts: int = 2) -> dict:
    """Run an imported ``.tflite`` model on ``images`` stored test images in bulk.

    The images are split into ``parts`` fixed halves (images ``0..ceil(n/2)-1`` and the
    rest), each simulated by its own three harness processes in its own worker process, so
    both cores work; the split depends only on ``images`` (not on the machine), and the
    per-layer figures are the parts' sums, so the report is the same however the parts are
    scheduled.  A failing part is repeated with waves (FSTs in :func:`waves_dir`).

    Returns:
        The report dict of :func:`tb.test_units_network.run` (``network``, ``images``,
        ``layers``, ``rtl_pred``, ``golden_pred``, ``labels``) plus ``sim_seconds``,
        ``cycles`` (all units) and ``parts``.

    Raises:
        ValueError: bad ``model`` / ``images`` (one line).
        tb.kit.TestbenchFailed: a mismatch, a timeout or an RTL ``$error`` (the message
            names the waveform of the failing part).
    """
    from pymodel.graph.inference import run_network as golden_network
    from tb.test_units_network import check_model_args, load_model
    model = check_model_args(model, images)
    qnet, x, labels = load_model(model)
    n_parts = max(1, min(int(parts), images))
    size = -(-images // n_parts)
    spans = [(i, min(size, images - i)) for i in range(0, images, size)]
    tags = ["" if len(spans) == 1 else f"-part{k}" for k in range(len(spans))]
    jobs = [(str(model), first, n, waves, tag) for (first, n), tag in zip(spans, tags)]
    if len(jobs) == 1:
        results = [_simulate_part(jobs[0])]
    else:
        with ProcessPoolExecutor(len(jobs)) as pool:
            results = list(pool.map(_simulate_part, jobs))
    for job, res in zip(jobs, results):
        if "error" in res:
            fsts = waves_dir(model)
            if not waves:
                print(f"[qmac] bulk run failed; re-running images {job[1]}..{job[1] + job[2] - 1} "
                      f"with waves to leave the waveforms in {fsts}", file=sys.stderr, flush=True)
                _simulate_part((job[0], job[1], job[2], True, job[4]))
            save = ", ".join(f"gtkwave {fsts / (top + job[4] + '.fst')} sim/{top}.gtkw"
                             for top in ("qlayer_engine", "window_engine", "eltwise_engine"))
            note = f" (image numbers below count from image {job[1]})" if job[1] else ""
            raise kit.TestbenchFailed(f"images {job[1]}..{job[1] + job[2] - 1}{note}: {res['error']}\n"
                                      f"waveforms (one per unit): {save}")
    layers = [dict(l, out_shape=list(l["out_shape"]), gemm=list(l["gemm"]) if l["gemm"] else None)
              for l in results[0]["layers"]]
    for res in results[1:]:
        for tot, l in zip(layers, res["layers"]):
            for k in ("macs", "cycles", "load_cycles", "array_beats", "mismatches"):
                tot[k] += l[k]
            tot["out_shape"] = [tot["out_shape"][0] + l["out_shape"][0], *tot["out_shape"][1:]]
            if tot["gemm"]:
                tot["gemm"] = [tot["gemm"][0] + l["gemm"][0], *tot["gemm"][1:]]
    out = np.concatenate([np.asarray(r["out"], np.int64).reshape(r_n, -1)
                          for r, (_, r_n) in zip(results, spans)])
    xq = np.ascontiguousarray(x[:images]).astype(np.int8)
    golden = np.asarray(golden_network(qnet, xq)[-1], np.int64).reshape(images, -1)
    return {"network": qnet.name, "images": images, "layers": layers,
            "rtl_pred": out.argmax(axis=1).tolist(), "golden_pred": golden.argmax(axis=1).tolist(),
            "labels": labels[:images].tolist(), "output_equal": bool(np.array_equal(out, golden)),
            "sim_seconds": sum(r["sim_seconds"] for r in results),
            "cycles": sum(l["cycles"] + l["load_cycles"] for l in layers), "parts": len(spans)}


def main(model: str | Path, images: int = 1, waves: bool = False) -> int:
    """``make sim SIM=verilator MODEL=...``: run in bulk and print the per-layer table."""
    from tb.network import LayerReport
    from tb.units import format_units_report
    t0 = time.perf_counter()
    rep = run_model(model, images, waves=waves)
    wall = time.perf_counter() - t0
    layers = [LayerReport(**{**l, "out_shape": tuple(l["out_shape"]),
                             "gemm": tuple(l["gemm"]) if l["gemm"] else None})
              for l in rep["layers"]]
    print(format_units_report(rep["network"], rep["images"], layers,
                              {"RTL": rep["rtl_pred"], "golden": rep["golden_pred"],
                               "label": rep["labels"]}))
    print(f"simulator: Verilator (bulk C++ harnesses), {rep['parts']} worker process(es)")
    print(f"simulated cycles (all units, load included) {rep['cycles']:,}  "
          f"({rep['sim_seconds']:.2f} s in the harnesses)")
    print(f"wall time (build, golden model, simulation) {wall:.1f} s")
    if waves:
        d = waves_dir(model)
        for top in ("qlayer_engine", "window_engine", "eltwise_engine"):
            for fst in sorted(d.glob(f"{top}*.fst")):
                print(f"waveform: {fst.relative_to(kit.REPO_ROOT)}  open with: gtkwave "
                      f"{fst.relative_to(kit.REPO_ROOT)} sim/{top}.gtkw")
    bad = sum(l.mismatches for l in layers)
    return 1 if bad or not rep["output_equal"] else 0
