"""Every RTL parameter check fires, with its message (issue 15).

Each illegal parameter combination named in a ``generate if`` check of ``rtl/`` is
elaborated once with Icarus Verilog (``iverilog -P``; Icarus 11 has no elaboration-time
``$error``, so the check is an ``initial $fatal`` at time 0: ``vvp`` must stop with
``FATAL: ... <message>``) and, once per check block, with Verilator (``--lint-only -G``:
the ``$error`` branch must stop elaboration with that message).  A legal set of the same
module must elaborate cleanly, so the checks do not fire by accident either.

The tools are called directly (no cocotb): an elaboration check needs no testbench, and
each case takes a fraction of a second.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tb.kit import RTL_DIR, SIM_DIR

SOURCES = {  # module -> glob patterns of the files it needs
    "mac_skew": ["mac_skew.v"], "mac_grid": ["mac_grid.v", "mac_pe.v"],
    "mac_array": ["mac_*.v"], "requant_out_fifo": ["requant_out_fifo.v"],
    "requant_param_mem": ["requant_param_mem.v"], "requant_pipeline": ["requant_*.v"],
    "qlayer_engine": ["*.v"], "qmac_top": ["*.v"],
    "window_engine": ["window_*.v", "requant_*.v"], "eltwise_engine": ["eltwise_*.v", "requant_*.v"],
}

_ENGINE = ("qlayer_engine: ROWS = {ROWS}, COLS = {COLS}, A_DEPTH = {A_DEPTH}, W_DEPTH = {W_DEPTH}, "
           "N_TILES_MAX = {N_TILES_MAX}, ACC_FIFO = {ACC_FIFO}: all must be >= 1 (ACC_FIFO >= 3)")
_ENGINE_DEF = dict(ROWS=8, COLS=8, A_DEPTH=64, W_DEPTH=2048, N_TILES_MAX=8, ACC_FIFO=4)
_RQ = ("requant_pipeline: LANES = {LANES}, CHANNELS = {CHANNELS}, USER_W = {USER_W}, "
       "SINGLE_ROUNDING = {SINGLE_ROUNDING}: need LANES >= 1, CHANNELS a non-zero multiple of "
       "LANES")
_RQ_DEF = dict(LANES=8, CHANNELS=64, USER_W=1, SINGLE_ROUNDING=0)
_TOP_UNITS = ("qmac_top: UNITS = 1 with ROWS = {ROWS}, COLS = {COLS}, H_MAX = {H_MAX}, W_MAX = "
              "{W_MAX}, TAPS_MAX = {TAPS_MAX}, GROUPS_MAX = {GROUPS_MAX}: the units need ROWS == "
              "COLS, H_MAX and W_MAX powers of two 1..32768, TAPS_MAX and GROUPS_MAX 1..255 (or "
              "UNITS = 0)")
_TOP_DEF = dict(ROWS=8, COLS=8, H_MAX=32, W_MAX=32, TAPS_MAX=25, GROUPS_MAX=8)


def _top(**p: int) -> str:
    return _TOP_UNITS.format(**{**_TOP_DEF, **p})


def _engine(**p: int) -> str:
    return _ENGINE.format(**{**_ENGINE_DEF, **{k: v for k, v in p.items() if k in _ENGINE_DEF}})


def _rq(**p: int) -> str:
    return _RQ.format(**{**_RQ_DEF, **{k: v for k, v in p.items() if k in _RQ_DEF}})


# (module, illegal parameters, message, also run Verilator) -- every check block once
# with Verilator, every condition of a composite check once with Icarus.
CASES = [
    ("mac_skew", {"LANES": 0}, "mac_skew: parameter LANES = 0 is illegal; it must be >= 1", True),
    ("mac_skew", {"WIDTH": 0}, "mac_skew: parameter WIDTH = 0 is illegal; it must be >= 1", True),
    ("mac_grid", {"ROWS": 0}, "mac_grid: parameter ROWS = 0 is illegal; it must be >= 1", True),
    ("mac_grid", {"COLS": 0}, "mac_grid: parameter COLS = 0 is illegal; it must be >= 1", True),
    ("mac_array", {"ROWS": 0}, "mac_array: parameter ROWS = 0 is illegal; it must be >= 1", True),
    ("mac_array", {"COLS": 0}, "mac_array: parameter COLS = 0 is illegal; it must be >= 1", True),
    ("requant_out_fifo", {"DEPTH": 1}, "requant_out_fifo: WIDTH = 8, DEPTH = 1, PTR_W = 1: need "
     "WIDTH >= 1, DEPTH >= 2, 2^PTR_W >= DEPTH", True),
    ("requant_out_fifo", {"WIDTH": 0}, "requant_out_fifo: WIDTH = 0, DEPTH = 9, PTR_W = 4", False),
    ("requant_out_fifo", {"DEPTH": 9, "PTR_W": 2}, "requant_out_fifo: WIDTH = 8, DEPTH = 9, PTR_W = 2",
     False),
    ("requant_param_mem", {"DEPTH": 0}, "requant_param_mem: WIDTH = 94, DEPTH = 0, ADDR_W = 1: need "
     "WIDTH >= 1, DEPTH >= 1, 2^ADDR_W >= DEPTH", True),
    ("requant_param_mem", {"WIDTH": 0}, "requant_param_mem: WIDTH = 0, DEPTH = 8, ADDR_W = 3", False),
    ("requant_param_mem", {"DEPTH": 3, "ADDR_W": 1}, "requant_param_mem: WIDTH = 94, DEPTH = 3, "
     "ADDR_W = 1", False),
    ("requant_pipeline", {"CHANNELS": 12}, _rq(CHANNELS=12), True),
    ("requant_pipeline", {"LANES": 0}, _rq(LANES=0), False),
    ("requant_pipeline", {"CHANNELS": 4}, _rq(CHANNELS=4), False),
    ("requant_pipeline", {"USER_W": 0}, _rq(USER_W=0), False),
    ("requant_pipeline", {"TILE_W": 2}, _rq(), False),
    ("requant_pipeline", {"CHAN_W": 5}, _rq(), False),
    ("requant_pipeline", {"TILES": 4}, _rq(), False),
    ("qlayer_engine", {"ACC_FIFO": 2}, _engine(ACC_FIFO=2), True),
    ("qlayer_engine", {"ROWS": 0}, _engine(ROWS=0), False),
    ("qlayer_engine", {"COLS": 0}, _engine(COLS=0), False),
    ("qlayer_engine", {"A_DEPTH": 0}, _engine(A_DEPTH=0), False),
    ("qlayer_engine", {"W_DEPTH": 0}, _engine(W_DEPTH=0), False),
    ("qlayer_engine", {"N_TILES_MAX": 0}, _engine(N_TILES_MAX=0), False),
    ("qlayer_engine", {"A_DEPTH": 65537}, _engine(A_DEPTH=65537), False),
    ("qlayer_engine", {"WA_W": 10}, _engine(), False),
    ("qlayer_engine", {"NT_W": 2}, _engine(), False),
    ("qlayer_engine", {"CH_W": 5}, _engine(), False),
    ("qmac_top", {"ROWS": 4}, _top(ROWS=4), True),
    ("qmac_top", {"H_MAX": 24}, _top(H_MAX=24), False),
    ("qmac_top", {"TAPS_MAX": 256}, _top(TAPS_MAX=256), False),
    ("window_engine", {"REQUANT": 2}, "window_engine: LANES = 8, H_MAX = 32, W_MAX = 32, "
     "TAPS_MAX = 25, GROUPS_MAX = 8, RES_FIFO = 4, REQUANT = 2: need all >= 1", True),
    ("eltwise_engine", {"REQUANT": 2}, "eltwise_engine: LANES = 8, RES_FIFO = 8, REQUANT = 2: "
     "need LANES >= 1", True),
]


def _sources(module: str) -> list[str]:
    return sorted({str(p) for pat in SOURCES[module] for p in RTL_DIR.glob(pat)})


def _icarus(module: str, params: dict[str, int], tmp: Path) -> tuple[int, str]:
    """Elaborate with iverilog and run vvp; (vvp exit status, all output)."""
    vvp = tmp / f"{module}.vvp"
    comp = subprocess.run(["iverilog", "-g2012", "-I", str(RTL_DIR), "-o", str(vvp), "-s", module,
                           *[f"-P{module}.{k}={v}" for k, v in params.items()], *_sources(module)],
                          capture_output=True, text=True)
    assert comp.returncode == 0, f"iverilog failed before the check could fire:\n{comp.stderr}"
    run = subprocess.run(["vvp", "-n", str(vvp)], capture_output=True, text=True, timeout=60)
    return run.returncode, run.stdout + run.stderr


def _verilator(module: str, params: dict[str, int]) -> tuple[int, str]:
    run = subprocess.run(["verilator", "--lint-only", f"-I{RTL_DIR}", "--top-module", module,
                          *[f"-G{k}={v}" for k, v in params.items()], *_sources(module)],
                         capture_output=True, text=True, timeout=120)
    return run.returncode, run.stdout + run.stderr


@pytest.mark.rtl
@pytest.mark.parametrize("module,params,message,verilator", CASES,
                         ids=[f"{m}-{'_'.join(f'{k}{v}' for k, v in p.items())}"
                              for m, p, _, _ in CASES])
def test_parameter_check_fires(module: str, params: dict[str, int], message: str,
                               verilator: bool, tmp_path: Path) -> None:
    status, out = _icarus(module, params, tmp_path)
    assert status != 0, f"{module} {params}: vvp ran to the end; expected $fatal:\n{out}"
    assert re.search(rf"FATAL: \S+{module}\.v:\d+: " + re.escape(message), out), \
        f"{module} {params}: expected 'FATAL: ... {message}', got:\n{out}"
    if verilator:
        status, out = _verilator(module, params)
        assert status != 0, f"{module} {params}: Verilator elaborated an illegal set:\n{out}"
        assert re.search(r"%(?:Warning-USERERROR|Error-USERERROR|Error): \S+" + module
                         + r"\.v:\d+:\d+: " + re.escape(message), out), \
            f"{module} {params}: Verilator did not print '{message}':\n{out}"


@pytest.mark.rtl
@pytest.mark.parametrize("module", sorted(SOURCES))
def test_legal_defaults_elaborate(module: str, tmp_path: Path) -> None:
    """The default parameters pass every check (vvp runs to the end, no FATAL)."""
    status, out = _icarus(module, {}, tmp_path)
    assert status == 0 and "FATAL" not in out and "ERROR" not in out, out


# The smallest legal value of every checked parameter (and non-powers of two): the
# checks must not fire there either (an off-by-one in a check would stop a legal build).
LEGAL_EXTREMES = [
    ("mac_skew", {"LANES": 1, "WIDTH": 1}),
    ("mac_grid", {"ROWS": 1, "COLS": 1}),
    ("mac_array", {"ROWS": 1, "COLS": 1}),
    ("requant_out_fifo", {"WIDTH": 1, "DEPTH": 2}),
    ("requant_out_fifo", {"WIDTH": 1, "DEPTH": 3}),
    ("requant_param_mem", {"WIDTH": 1, "DEPTH": 1}),
    ("requant_param_mem", {"WIDTH": 1, "DEPTH": 5}),
    ("requant_pipeline", {"LANES": 1, "CHANNELS": 1, "USER_W": 1}),
    ("requant_pipeline", {"LANES": 3, "CHANNELS": 9, "USER_W": 1}),
    ("qlayer_engine", {"ROWS": 1, "COLS": 1, "A_DEPTH": 1, "W_DEPTH": 1, "N_TILES_MAX": 1,
                       "ACC_FIFO": 3}),
    ("qlayer_engine", {"ROWS": 1, "COLS": 1, "A_DEPTH": 65536, "W_DEPTH": 1 << 24,
                       "N_TILES_MAX": 1}),
    ("qmac_top", {"ROWS": 2, "COLS": 1, "UNITS": 0}),                    # the iCE40 harness's size
    ("qmac_top", {"ROWS": 1, "COLS": 1, "H_MAX": 1, "W_MAX": 1, "TAPS_MAX": 1, "GROUPS_MAX": 1}),
    ("window_engine", {"REQUANT": 0}),                                    # as qmac_top builds it
    ("eltwise_engine", {"REQUANT": 0}),
]


@pytest.mark.rtl
@pytest.mark.parametrize("module,params", LEGAL_EXTREMES,
                         ids=[f"{m}-{'_'.join(f'{k}{v}' for k, v in p.items())}"
                              for m, p in LEGAL_EXTREMES])
def test_legal_extremes_elaborate(module: str, params: dict[str, int], tmp_path: Path) -> None:
    status, out = _icarus(module, params, tmp_path)
    assert status == 0 and "FATAL" not in out and "ERROR" not in out, out
