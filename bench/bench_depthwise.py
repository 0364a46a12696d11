"""Depthwise convolution on the RTL: the window engine beside the MAC-array mode baseline.

Both measured in this run on Icarus, cycle-exact, every output checked against pymodel:

* ``window_engine`` (LANES = 8 dedicated channel lanes, 16 x 16 input buffer):
  ``test_throughput`` of ``tb/test_window_engine.py`` -- a 3x3 stride-1 SAME depthwise
  layer, 16 x 16 x 32, no stalls, input tiles loaded and outputs drained (cycles from
  each job's first input beat to its last output beat, summed).
* the baseline, depthwise as a mode of the 8 x 8 MAC array: ``tb/test_depthwise_on_array.py``
  runs the same layer on ``qlayer_engine`` as one block-diagonal GEMM per tile of 8
  channels (K = 9 * 8).

``utilization = MACs / (peak MACs per cycle * cycles)``; MACs = H * W * C * 9.  The cell
counts of the comparison come from ``make synth`` (docs/microarchitecture.md, "Window
engine").
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from tb import kit
from tb import test_depthwise_on_array as array_tb
from tb import test_window_engine as window_tb

SHAPE = (16, 16, 32)


def _measure(run: object, env: dict[str, str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        env = dict(env, QMAC_BENCH_OUT=str(out), QMAC_BENCH_SHAPE=",".join(map(str, SHAPE)),
                   COCOTB_LOG_LEVEL="WARNING", GPI_LOG_LEVEL="WARNING")
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            run()  # type: ignore[operator]
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return json.loads(out.read_text())


def measure() -> tuple[dict, dict]:
    """(window engine figures, MAC-array-mode figures)."""
    wparams = dict(window_tb.DEFAULT_PARAMETERS, LANES=8, GROUPS_MAX=4)
    wbuild = kit.default_build_dir(window_tb.DUT, wparams).with_name(
        f"{window_tb.DUT}-{kit.param_tag(wparams)}-bench")
    win = _measure(lambda: window_tb.run(wparams, build_dir=wbuild, testcase="test_throughput"),
                   {})
    abuild = kit.SIM_DIR / "build" / "depthwise_on_array-bench"
    arr = _measure(lambda: array_tb.run(build_dir=abuild), {})
    return win, arr


def main() -> None:
    win, arr = measure()
    h, w, c = SHAPE
    print(f"\ndepthwise 3x3 stride 1 SAME, {h}x{w}x{c} ({win['macs']} MACs), no stalls")
    print(f"{'unit':44s} {'peak MAC/cyc':>12} {'cycles':>8} {'MAC/cyc':>8} {'util':>7}")
    rows = [(f"window_engine, {win['lanes']} lanes (this)", win["lanes"], win["cycles"], win["macs"]),
            (f"MAC array {arr['rows']}x{arr['cols']} mode (baseline)", arr["rows"] * arr["cols"],
             arr["cycles"], arr["macs"])]
    for name, peak, cyc, macs in rows:
        print(f"{name:44s} {peak:>12} {cyc:>8} {macs / cyc:>8.2f} {100 * macs / (peak * cyc):>6.1f}%")
    util = win["macs"] / (win["lanes"] * win["cycles"])
    print(f"window engine: {100 * util:.1f}% of its peak -> "
          f"{'meets' if util >= 0.5 else 'MISSES'} the 50% target")


if __name__ == "__main__":
    main()
