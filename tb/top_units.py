"""Window and element-wise layers on ``qmac_top`` (LAYER_OP WINDOW / ELTWISE), through
cocotbext-axi only.

The host's duties are those of the standalone unit drivers, whose functions are reused:
:meth:`tb.window.WindowEnv.jobs` cuts a depthwise / pooling / MEAN layer into input tiles
of one channel group that fit ``H_MAX x W_MAX``, :meth:`tb.window.WindowEnv.registers`
gives each tile's unit registers and :func:`tb.window.golden` the expected outputs
(``pymodel.ops.window_stages``); ``pymodel.ops.eltwise_stages.eltwise_engine`` is the
element-wise unit's golden function.

On the top, consecutive tiles with the same registers and channel group are one layer
job (LAYER_BLOCKS = tiles); a group's depthwise taps stream on ``s_axis_wgt`` (LAYER_OP
WINDOW) before its first job, and the layer's requantize parameters on ``s_axis_prm``
once per layer.  An element-wise layer is one job: operand A on ``s_axis_act``, operand
B on ``s_axis_wgt``, LAYER_BLOCKS = beats of COLS elements.  Every output beat is checked
exactly by the top's scoreboard as it leaves ``m_axis_out``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from cocotbext.axi import AxiStreamFrame

from pymodel.ops.eltwise_stages import eltwise_engine
from pymodel.ops.layers import fold_input_zero_point
from pymodel.ops.window_stages import identity_requant, mean_requant
from tb import qmac_regs as R
from tb.engine import GemmJob
from tb.top import TopEnv, unit_param_beats
from tb.window import WindowEnv, WindowLayer, golden as window_golden

OP_GEMM, OP_WINDOW, OP_ELTWISE = 0, 1, 2
UNIT_WINDOW, UNIT_ELTWISE = 0, 1
ELT_OP = {"add": 0, "sub": 1, "mul": 2}


async def _stream(env: TopEnv, op: int, wgt: bytes | None, prm: bytes | None) -> None:
    """Weights / parameters into a unit's memories (LAYER_OP selects the unit)."""
    await env.write(R.LAYER_OP, op)
    if wgt is not None:
        await env.wgt.send(AxiStreamFrame(wgt))
    if prm is not None:
        await env.prm.send(AxiStreamFrame(prm))
    await env.wgt.wait()
    await env.prm.wait()


def _window_params(env: TopEnv, layer: WindowLayer) -> bytes:
    """Requantize parameters of every channel group the layer uses, channel 0 up."""
    c = layer.channels
    groups = -(-c // env.lanes)
    if layer.op == "dw":
        assert layer.rq is not None and layer.w is not None
        rq = layer.rq
        wt = layer.w.reshape(layer.taps, c)
        bias = fold_input_zero_point(rq.bias, wt.T, layer.in_zero_point)
        m0, shift = rq.m0, rq.shift
        zp, lo, hi = rq.out_zero_point, rq.act_min, rq.act_max
    else:
        # pooling / MEAN: the same parameters in every channel; groups beyond GROUPS_MAX
        # share memory rows (GROUP = g % GROUPS_MAX)
        groups = min(groups, env.groups_max)
        if layer.op == "mean":
            assert layer.mean is not None
            rq = mean_requant(layer.mean, layer.taps, groups * env.lanes)
        else:
            rq = identity_requant(groups * env.lanes, layer.act_min, layer.act_max)
        bias, m0, shift = rq.bias, rq.m0, rq.shift
        zp, lo, hi = rq.out_zero_point, rq.act_min, rq.act_max
    n = groups * env.lanes
    pad = n - len(bias)
    z = np.zeros(max(pad, 0), np.int64)
    return unit_param_beats(np.concatenate([np.asarray(bias, np.int64), z])[:n],
                            np.concatenate([np.asarray(m0, np.int64), z])[:n],
                            np.concatenate([np.asarray(shift, np.int64), z])[:n], zp, lo, hi)


async def run_window_layer(env: TopEnv, layer: WindowLayer, *,
                           ahead: GemmJob | None = None) -> tuple[np.ndarray, int, int]:
    """Run and check a depthwise / pooling / MEAN layer on the top's window unit.

    ``ahead``: a GEMM layer STARTed and not yet run; the layer's parameters and weights
    load while it waits, its first job STARTs behind it (:meth:`tb.top.TopEnv.unit_job`).

    Returns:
        ``(int8 [N, OH, OW, C] outputs, cycles, useful tap operations)``; cycles from the
        layer's first AXI access to its last output beat.
    """
    g = window_golden(layer)
    jobs = WindowEnv.jobs(env, layer, g)            # type: ignore[arg-type]  # sizes only
    lanes = env.lanes
    out = np.zeros(g.out.shape, np.int64)
    t0 = env.clock.cycle()
    await _stream(env, OP_WINDOW, None, _window_params(env, layer))
    loaded = None
    pad_values = WindowEnv._pad_lane_values(layer, g)
    ops = 0
    i = 0
    while i < len(jobs):
        job = jobs[i]
        regs = WindowEnv.registers(env, layer, job)  # type: ignore[arg-type]
        run = [job]
        while (i + len(run) < len(jobs) and jobs[i + len(run)].g == job.g
               and WindowEnv.registers(env, layer, jobs[i + len(run)]) == regs):  # type: ignore[arg-type]
            run.append(jobs[i + len(run)])
        i += len(run)
        c0 = job.g * lanes
        real = min(lanes, layer.channels - c0)
        if layer.op == "dw" and loaded != job.g:
            assert layer.w is not None
            wt = np.zeros((layer.taps, lanes), np.int8)
            wt[:, :real] = layer.w.reshape(layer.taps, layer.channels)[:, c0:c0 + real]
            await _stream(env, OP_WINDOW, wt.tobytes(), None)
            loaded = job.g
        for reg, value in regs.items():
            await env.unit_cfg(UNIT_WINDOW, reg, value)
        act = bytearray()
        expected: list[tuple[np.ndarray, str]] = []
        slots: list[tuple[int, int, int]] = []
        for jb in run:
            x = np.zeros((jb.iy[1] - jb.iy[0], jb.ix[1] - jb.ix[0], lanes), np.int8)
            x[:, :, :real] = layer.x[jb.n, jb.iy[0]:jb.iy[1], jb.ix[0]:jb.ix[1], c0:c0 + real]
            act += x.tobytes()
            for oy in range(*jb.oy):
                for ox in range(*jb.ox):
                    e = np.full(lanes, pad_values[oy, ox], np.int64)
                    e[:real] = g.out[jb.n, oy, ox, c0:c0 + real]
                    expected.append((e, f"op {layer.op} layer {layer.name!r} pixel (image "
                                        f"{jb.n}, y {oy}, x {ox}) channels {c0}..{c0 + lanes - 1}"))
                    slots.append((jb.n, oy, ox))
            inside = g.inside[jb.oy[0]:jb.oy[1], jb.ox[0]:jb.ox[1]]
            ops += real * (int(inside.size) if layer.op == "dw" else int(inside.sum()))

        def store(k: int, v: np.ndarray, slots=slots, c0=c0, real=real) -> None:
            n, oy, ox = slots[k]
            out[n, oy, ox, c0:c0 + real] = v[:real]

        await env.unit_job(OP_WINDOW, len(run), bytes(act), None, expected, store,
                           name=layer.name, ahead=ahead)
        ahead = None
    cycles = env.out_mon.last_cycle - t0 + 1 if env.out_mon.last_cycle is not None else 0
    return out.astype(np.int8), cycles, ops


async def run_eltwise_layer(env: TopEnv, name: str, op: str, a: np.ndarray, b: np.ndarray,
                            p: Any, *, ahead: GemmJob | None = None) -> tuple[np.ndarray, int]:
    """Run and check ADD / SUB / MUL of two int8 operands of one shape on the top's
    element-wise unit (``ahead``: as :func:`run_window_layer`'s).

    Returns:
        ``(int8 outputs of a's shape, cycles from the layer's first AXI access to its last
        output beat)``.
    """
    lanes = env.lanes
    n = a.size
    beats = -(-n // lanes)
    pa = np.zeros(beats * lanes, np.int8)
    pb = np.zeros(beats * lanes, np.int8)
    pa[:n], pb[:n] = a.ravel(), b.ravel()
    exp = np.asarray(eltwise_engine(pa, pb, op, p), np.int64).reshape(beats, lanes)
    t0 = env.clock.cycle()
    regs = {0: ELT_OP[op], 1: p.in1_zero_point & 0xFF, 2: p.in2_zero_point & 0xFF}
    if op != "mul":
        regs.update({3: p.in1_multiplier, 4: p.in1_shift & 0xFFFFFFFF,
                     5: p.in2_multiplier, 6: p.in2_shift & 0xFFFFFFFF})
    for reg, value in regs.items():
        await env.unit_cfg(UNIT_ELTWISE, reg, value)
    z = np.zeros(lanes, np.int64)
    await _stream(env, OP_ELTWISE, None,
                  unit_param_beats(z, np.full(lanes, p.out_multiplier), np.full(lanes, p.out_shift),
                                   p.out_zero_point, p.act_min, p.act_max))
    out = np.zeros((beats, lanes), np.int64)

    def store(k: int, v: np.ndarray) -> None:
        out[k] = v

    await env.unit_job(OP_ELTWISE, beats, pa.tobytes(), pb.tobytes(),
                       [(exp, f"op {op} layer {name!r} (beat r, lane c = element "
                              f"r * {lanes} + c)")], store, name=name, ahead=ahead)
    cycles = env.out_mon.last_cycle - t0 + 1 if env.out_mon.last_cycle is not None else 0
    return out.ravel()[:n].astype(np.int8).reshape(a.shape), cycles
