"""cocotb testbench of ``rtl/window_engine.v`` -- depthwise convolution and pooling.

Every output beat is compared exactly (``==``) with ``pymodel.ops.window_stages`` (whose
compositions equal ``pymodel.ops.layers``) by the kit's scoreboard through
:class:`tb.window.WindowEnv`; a mismatch names the op, the layer, the output pixel, the
channel and the cycle.  No output may be X/Z after reset; both streams run with random
stalls; the output stream must obey the AXI-Stream rules.

Functional coverage (``tb.kit.coverage``): op x stride x padding edge, op x saturation
(low clamp, high clamp, inside), op x tie (the rounding's tie case: average pool sum
exactly half-way; depthwise requantize shift remainder exactly one half; max pool two
equal maxima), dilation of the depthwise ops.  ``test_random_layers`` runs until every
op has produced at least ``OUTPUTS_PER_OP`` output elements and fails below 100 % of the
defined bins.

``run()`` builds and runs this module (``tests/test_rtl_window_engine.py``).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import cocotb
import numpy as np

from pymodel.ops.layers import RequantParams
from tb import kit
from tb.kit.coverage import Coverage
from tb.window import Golden, WindowEnv, WindowLayer

DUT = "window_engine"
DEFAULT_PARAMETERS = {"LANES": 8, "H_MAX": 16, "W_MAX": 16, "TAPS_MAX": 25, "GROUPS_MAX": 4}
SOURCES = ("window_*.v", "requant_*.v")
OPS = ("dw3x3", "dw5x5", "max", "avg", "mean")
OUTPUTS_PER_OP = 10_000   # output elements (pixel x channel) per op; QMAC_WINDOW_OUTPUTS overrides


def make_coverage() -> Coverage:
    cov = Coverage("window_engine")
    cov.point("op", OPS)
    cov.point("stride", [1, 2])
    cov.point("edge", ["interior", "top", "bottom", "left", "right"])
    cov.point("sat", ["low", "high", "inside"])
    cov.point("tie", ["tie", "no tie"])
    cov.point("dilation", [1, 2])
    # MEAN is one window over the whole image: stride 1, no padding
    cov.cross("op_x_stride_x_edge", ["op", "stride", "edge"],
              ignore=lambda op, s, e: op == "mean" and (s, e) != (1, "interior"))
    cov.cross("op_x_sat", ["op", "sat"])
    cov.cross("op_x_tie", ["op", "tie"])
    cov.cross("op_x_dilation", ["op", "dilation"],
              # pooling has no dilation in TFLite (and the driver never sets one)
              ignore=lambda op, d: op in ("max", "avg", "mean") and d != 1)
    return cov


def ops_of(env: WindowEnv) -> tuple[str, ...]:
    """The ops this engine's parameters can run (5x5 depthwise needs TAPS_MAX >= 25)."""
    return tuple(o for o in OPS if o != "dw5x5" or (env.taps_max >= 25 and env.h_max >= 5
                                                     and env.w_max >= 5))


def op_name(layer: WindowLayer) -> str:
    if layer.op == "dw":
        return f"dw{layer.kernel[0]}x{layer.kernel[1]}"
    return layer.op


def sample(cov: Coverage, layer: WindowLayer, g: Golden) -> None:
    """Bulk-sample the coverage bins of one checked layer."""
    op = op_name(layer)
    if op not in OPS:
        return
    inside = g.inside                                  # [OH, OW, T]
    oh, ow, _ = inside.shape
    (kh, kw) = layer.kernel
    tap_y = np.repeat(np.arange(kh), kw)
    tap_x = np.tile(np.arange(kw), kh)
    # an output pixel touches the top edge if one of its taps lies above the image, ...
    full = inside.all(axis=2)
    stride = layer.stride[0] if layer.stride[0] == layer.stride[1] else None
    n_out = g.out.shape[0] * g.out.shape[3]
    edges = {"interior": int(full.sum())}
    (pt, _), (pl, _) = g.pads
    sh, sw = layer.stride
    dh, dw = layer.dilation
    iy = np.arange(oh)[:, None] * sh - pt + tap_y[None, :] * dh      # [OH, T]
    ix = np.arange(ow)[:, None] * sw - pl + tap_x[None, :] * dw      # [OW, T]
    h, w = layer.x.shape[1:3]
    edges["top"] = int((iy < 0).any(axis=1).sum()) * ow
    edges["bottom"] = int((iy >= h).any(axis=1).sum()) * ow
    edges["left"] = int((ix < 0).any(axis=1).sum()) * oh
    edges["right"] = int((ix >= w).any(axis=1).sum()) * oh
    for e, cnt in edges.items():
        if cnt and stride in (1, 2):
            cov.sample(cnt * n_out, op=op, stride=stride, edge=e)
    if layer.op == "dw":
        lo, hi = layer.rq.act_min, layer.rq.act_max
    elif layer.op == "mean":
        lo, hi = -128, 127
    else:
        lo, hi = layer.act_min, layer.act_max
    pre = g.pre_clamp
    for name, mask in (("low", pre < lo), ("high", pre > hi), ("inside", (pre >= lo) & (pre <= hi))):
        if mask.any():
            cov.sample(int(mask.sum()), op=op, sat=name)
    for name, mask in (("tie", g.tie), ("no tie", ~g.tie)):
        if mask.any():
            cov.sample(int(mask.sum()), op=op, tie=name)
    if layer.dilation[0] == layer.dilation[1]:
        cov.sample(g.out.size, op=op, dilation=layer.dilation[0])


def random_rq(rng: np.random.Generator, n: int) -> RequantParams:
    """Per-channel requantize parameters; small right shifts so that ties happen."""
    m0 = rng.integers(1 << 30, 1 << 31, n)
    shift = rng.choice([-1, -2, -3, -6, -9, -12, 0], n)
    bias = rng.integers(-(1 << 12), 1 << 12, n)
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2))
    if rng.random() < 0.4:
        lo, hi = -128, 127
    return RequantParams(bias=bias, m0=m0, shift=shift, out_zero_point=int(rng.integers(-128, 128)),
                         act_min=lo, act_max=hi)


def random_layer(rng: np.random.Generator, env: WindowEnv, op: str, name: str,
                 want: tuple | None = None) -> WindowLayer:
    """A random layer of op ``op`` (one of OPS): shapes, strides, paddings, channels.

    ``want = (stride, edge)`` steers it towards an uncovered bin of op x stride x edge:
    that stride in both directions and explicit padding on that edge."""
    if op == "mean":
        return random_mean(rng, env, name)
    # whole channel groups mostly (lanes are the throughput), sometimes a ragged last group
    c = int(rng.choice([env.lanes, env.lanes, 2 * env.lanes,
                        int(rng.integers(1, min(3 * env.lanes, env.groups_max * env.lanes) + 1))]))
    c = min(c, env.groups_max * env.lanes)
    n = 1
    s = int(rng.choice([1, 2])) if want is None else int(want[0])
    stride = (s, s) if rng.random() < 0.9 or want is not None else (s, 3 - s)
    if op.startswith("dw"):
        k = 3 if op == "dw3x3" else 5
        kernel = (k, k)
        d = int(rng.choice([1, 1, 2])) if 2 * k - 1 <= min(env.h_max, env.w_max) else 1
        dilation = (d, d)
    else:
        k = int(rng.choice([2, 3]))
        kernel = (k, k) if rng.random() < 0.8 else (k, 5 - k)
        dilation = (1, 1)
    keh, kew = (kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1
    padding: Any = str(rng.choice(["same", "valid", "explicit"], p=[0.35, 0.15, 0.5]))
    if want is not None:
        padding = "explicit"
    if padding == "explicit":
        pads = [int(v) for v in rng.integers(0, 3, 4)]
        if want is not None and want[1] != "interior":
            pads[["top", "bottom", "left", "right"].index(want[1])] = int(rng.integers(1, 3))
        padding = ((pads[0], pads[1]), (pads[2], pads[3]))
        if op == "avg":
            # every average window needs one in-image tap (TFLite divides by their count)
            padding = tuple((min(a, kernel[i] - 1), min(b, kernel[i] - 1))
                            for i, (a, b) in enumerate(padding))
    # up to a little more than the buffer, so that some layers run as several tiles (the
    # window's halo alone makes a 16 x 16 SAME layer two tiles high on a 16 x 16 buffer)
    h = int(rng.integers(max(1, keh - 2) if padding != "valid" else keh, env.h_max + 2))
    w = int(rng.integers(max(1, kew - 2) if padding != "valid" else kew, env.w_max + 2))
    if padding == "valid":
        h, w = max(h, keh), max(w, kew)
    elif not isinstance(padding, str):
        (pt, pb), (pl, pr) = padding
        h, w = max(h, keh - pt - pb, 1), max(w, kew - pl - pr, 1)
    x = rng.integers(-128, 128, (n, h, w, c)).astype(np.int8)
    layer = WindowLayer(name=name, op=op[:2] if op.startswith("dw") else op, x=x, kernel=kernel,
                        stride=stride, dilation=dilation, padding=padding)
    if layer.op == "dw":
        layer.w = rng.integers(-127, 128, (1, *kernel, c)).astype(np.int8)
        layer.in_zero_point = int(rng.integers(-128, 128))
        layer.rq = random_rq(rng, c)
    else:
        lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2))
        if rng.random() < 0.4:
            lo, hi = -128, 127
        layer.act_min, layer.act_max = lo, hi
    return layer


def random_mean(rng: np.random.Generator, env: WindowEnv, name: str) -> WindowLayer:
    """A spatial MEAN over small images (one window each), a batch of them."""
    from pymodel.ops.reduce import prepare_mean
    h = int(rng.integers(1, min(4, env.h_max) + 1))
    w = int(rng.integers(1, min(4, env.w_max) + 1))
    c = int(rng.choice([env.lanes, 2 * env.lanes]))
    x = rng.integers(-128, 128, (int(rng.integers(1, 9)), h, w, c)).astype(np.int8)
    s_in, s_out = (float(v) for v in np.exp(rng.uniform(-3, 1.5, 2)))
    zp_out = int(rng.choice([-128, 127])) if rng.random() < 0.3 else int(rng.integers(-128, 128))
    p = prepare_mean(np.float32(s_in), int(rng.integers(-128, 128)), np.float32(s_out), zp_out)
    return WindowLayer(name=name, op="mean", x=x, kernel=(h, w), mean=p)


@cocotb.test()
async def test_random_layers(dut: Any) -> None:
    """Random depthwise / pooling layers with random stalls until every op has produced
    OUTPUTS_PER_OP outputs; functional coverage must reach 100 %."""
    rng = kit.test_rng("test_random_layers", dut._log)
    env = WindowEnv(dut, rng, in_stall=0.2, out_stall=0.2)
    await env.start()
    cov = make_coverage()
    target = int(os.environ.get("QMAC_WINDOW_OUTPUTS", OUTPUTS_PER_OP))
    full = target >= OUTPUTS_PER_OP          # the full run must also close the coverage
    outputs = dict.fromkeys(ops_of(env), 0)
    full = full and len(outputs) == len(OPS)
    i = 0
    while min(outputs.values()) < target or (full and not cov.complete):
        op = min(outputs, key=outputs.get) if rng.random() < 0.7 else str(rng.choice(list(outputs)))
        env.src.stall_prob, env.sink.stall_prob = (float(v) for v in rng.choice([0.0, 0.1, 0.3], 2))
        want = None
        holes = [b for b, v in cov.crosses["op_x_stride_x_edge"].hits.items() if not v]
        if full and holes and rng.random() < 0.5:
            op, *want = holes[int(rng.integers(len(holes)))]
        layer = random_layer(rng, env, op, f"{op}_{i}", tuple(want) if want else None)
        _, st, g = await env.run_layer(layer)
        sample(cov, layer, g)
        if full and cov.complete and "coverage_layers" not in locals():
            coverage_layers = i + 1
            dut._log.info("[qmac] coverage closed after %d layers (%s)", coverage_layers, outputs)
        outputs[op] += g.out.size      # elements: pixels x channels
        i += 1
        if i > 400:
            break
    dut._log.info("[qmac] %d layers; outputs per op: %s", i, outputs)
    dut._log.info("%s", cov.report(bins=False))
    assert min(outputs.values()) >= target, f"too few outputs per op: {outputs}"
    if full:
        assert cov.complete, f"coverage {cov.percent:.1f} %; missing: {cov.missing()}"


@cocotb.test()
async def test_reset_midway(dut: Any) -> None:
    """Reset in the middle of a job (input half loaded, or outputs in flight), then a
    clean layer checks out."""
    rng = kit.test_rng("test_reset_midway", dut._log)
    env = WindowEnv(dut, rng, out_stall=0.3)
    await env.start()
    for k in range(2):
        layer = random_layer(rng, env, str(rng.choice(ops_of(env))), f"interrupted{k}")
        await env.start_job_unchecked(layer)
        await env.clock.cycles(int(rng.integers(30, 300)))
        await env.reset()
        await env.run_layer(random_layer(rng, env, str(rng.choice(ops_of(env))), f"after_reset{k}"))


@cocotb.test()
async def test_throughput(dut: Any) -> None:
    """3x3 stride-1 depthwise over 32 channels without stalls: cycles and utilization
    (useful MACs / (LANES * cycles), cycles from the first input beat to the last output
    beat of every job, loading of the tile included)."""
    rng = kit.test_rng("test_throughput", dut._log)
    env = WindowEnv(dut, rng)
    await env.start()
    h, w, c = (int(v) for v in os.environ.get("QMAC_BENCH_SHAPE", "16,16,32").split(","))
    c = min(c, env.groups_max * env.lanes)
    layer = WindowLayer(name="dw3x3_s1", op="dw", x=rng.integers(-128, 128, (1, h, w, c)).astype(np.int8),
                        kernel=(3, 3), padding="same",
                        w=rng.integers(-127, 128, (1, 3, 3, c)).astype(np.int8),
                        in_zero_point=-5, rq=random_rq(rng, c))
    _, st, _ = await env.run_layer(layer)
    dut._log.info("[qmac] throughput %s: %dx%dx%d, %d jobs, %d cycles, %d MACs, utilization "
                  "%.1f%% of LANES=%d MACs/cycle", layer.name, h, w, c, st.jobs, st.cycles,
                  st.macs, 100 * st.utilization, env.lanes)
    path = os.environ.get("QMAC_BENCH_OUT")
    if path:   # bench/bench_depthwise.py
        import json
        with open(path, "w") as f:
            json.dump({"cycles": st.cycles, "load_cycles": st.load_cycles, "macs": st.macs,
                       "lanes": env.lanes, "jobs": st.jobs}, f)


def run(parameters: Mapping[str, object] | None = None, *, waves: bool = False,
        seed: int | None = None, build_dir: Any = None, testcase: Any = None,
        extra_env: Mapping[str, str] | None = None) -> None:
    """Build ``window_engine`` with ``parameters`` and run this module's tests."""
    params = dict(DEFAULT_PARAMETERS, **(parameters or {}))
    kit.run_testbench(toplevel=DUT, sources=kit.rtl_sources(*SOURCES),
                      test_module="tb.test_window_engine", parameters=params, waves=waves,
                      seed=seed, build_dir=build_dir, testcase=testcase,
                      extra_env=dict(extra_env or {}))
