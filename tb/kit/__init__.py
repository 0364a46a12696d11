"""qmac verification kit: the pieces every cocotb testbench shares.

=====================  ==========================================================
:mod:`.clock`          :class:`ClockReset` -- clock, synchronous reset, cycle numbers
:mod:`.stream`         :class:`StreamSource` / :class:`StreamSink` /
                       :class:`StreamMonitor` -- valid/ready with random stalls and
                       AXI-Stream protocol checks
:mod:`.scoreboard`     :class:`Scoreboard` -- exact, in-order comparison with pymodel
:mod:`.checks`         :class:`NoXZChecker` -- no X/Z on outputs after reset
:mod:`.pack`           :func:`pack` / :func:`unpack` -- integer lanes <-> bit vectors
:mod:`.seed`           :func:`session_seed`, :func:`derive_seed`, :func:`test_rng`
:mod:`.runner`         :func:`run_testbench` -- cocotb_tools.runner on Icarus; fails
                       on simulator errors too (:func:`simulator_errors`)
=====================  ==========================================================

A typical test::

    clock = kit.ClockReset(dut.clk_i, dut.rst_i)
    await clock.start_and_reset()
    kit.NoXZChecker(clock, kit.dut_outputs(dut)).start()
    rng = kit.test_rng("test_random")
    src = kit.StreamSource.from_dut(dut, clock, "op", ["a", "b"], stall_prob=0.3, rng=rng)
    sb = kit.Scoreboard("res")
    sink = kit.StreamSink.from_dut(dut, clock, "res", ["data", "last"], stall_prob=0.3,
                                   rng=rng, on_beat=lambda b: sb.compare(
                                       kit.unpack(b["data"], LANES, 32), cycle=b.cycle,
                                       last=b["last"]))
    src.start(); sink.start()
    ... src.send({...}); sb.expect(pymodel_result, "tile 0") ...
    await src.wait_idle(); await sink.wait_for(n_beats); sb.check_done()
"""

from .checks import NoXZChecker, dut_outputs
from .clock import ClockReset
from .pack import XZError, pack, read_lanes, resolved_int, unpack
from .runner import (REPO_ROOT, RTL_DIR, SIM_DIR, TestbenchFailed, default_build_dir,
                     param_tag, rtl_sources, run_testbench, simulator_errors)
from .scoreboard import Mismatch, Scoreboard
from .seed import derive_seed, session_seed, test_rng
from .stream import Beat, StreamMonitor, StreamSink, StreamSource

__all__ = [
    "NoXZChecker", "dut_outputs", "ClockReset", "XZError", "pack", "read_lanes",
    "resolved_int", "unpack", "REPO_ROOT", "RTL_DIR", "SIM_DIR", "TestbenchFailed",
    "default_build_dir", "param_tag", "rtl_sources", "run_testbench", "simulator_errors",
    "Mismatch",
    "Scoreboard", "derive_seed", "session_seed", "test_rng", "Beat", "StreamMonitor",
    "StreamSink", "StreamSource",
]
