"""What a failing network run leaves behind: the message, a zoomed waveform view, the
command that reproduces it.

cocotb reports a failing test by logging the exception with its traceback; ``make sim``
runs cocotb at log level ERROR instead and takes the failure from the run's
``results.xml`` (the exception's message and the simulation time at which the test
stopped -- the clock edge of the failing beat), so the user sees the scoreboard's
message, not a traceback around it.  :func:`write_gtkw` turns the engine's GTKWave save
file into one that opens zoomed on that time with the primary marker and marker ``A``
on it.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

#: GTKWave's zoom is log2-scaled: ``ns per pixel = NS_PER_PX_AT_REF * 2**(REF_ZOOM - zoom)``
#: (measured on sim/qlayer_engine.gtkw: zoom -24 shows 10 us in about 119 pixels).
REF_ZOOM, NS_PER_PX_AT_REF = -24.0, 84.0
#: about 25 cycles of 10 ns across the waveform pane (~770 px of a 1600 px window), 33 px
#: per cycle: wide enough to print a lane value such as -128 in every cycle
VIEW_NS_PER_PX = 0.33
#: cycles shown before the failing edge
LEAD_CYCLES = 10


@dataclass
class Failure:
    """A failed cocotb test as ``results.xml`` records it.

    Attributes:
        message: the exception's message (several lines for a scoreboard mismatch).
        time_ns: simulation time at which the test stopped (the failing edge), ns.
    """

    message: str
    time_ns: float | None


def read_failure(results_xml: Path) -> Failure | None:
    """The first failed test case of ``results_xml`` (cocotb's xunit file), or None."""
    try:
        root = ET.parse(results_xml).getroot()
    except (OSError, ET.ParseError):
        return None
    for case in root.iter("testcase"):
        fail = case.find("failure")
        if fail is None:
            fail = case.find("error")
        if fail is None:
            continue
        message = (fail.get("message") or fail.text or "").strip()
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        stop = props.get("sim_time_stop")
        time_ns = float(stop) if stop not in (None, "") else None
        return Failure(_strip_exception_name(message), time_ns)
    return None


def _strip_exception_name(message: str) -> str:
    return re.sub(r"^(?:[A-Za-z_.]+(?:Mismatch|Error|Exception)): ", "", message)


def cycle_of(failure: Failure, period_ns: int = 10) -> int | None:
    """The clock cycle of the failure: the one the message names (``cycle N``), else the
    stop time divided by the period (the test may have run on after the failure: see
    ``tb.test_network.TAIL_CYCLES``)."""
    m = re.search(r"\bcycle (\d+)", failure.message)
    if m:
        return int(m.group(1))
    if failure.time_ns is not None:
        return int(failure.time_ns // period_ns)
    return None


def write_gtkw(template: Path, out: Path, fst: Path, time_ns: float,
               period_ns: int = 10) -> Path:
    """Write a copy of the GTKWave save file ``template`` that opens ``fst`` zoomed on
    ``time_ns``: about ``LEAD_CYCLES`` cycles before it visible, the primary marker and
    named marker A on it.  Units in the file are ps (the FST's timescale)."""
    t_ps = int(round(time_ns * 1000))
    start_ps = max(0, t_ps - LEAD_CYCLES * period_ns * 1000)
    # GTKWave applies [timestart] only if a whole window from there fits in the dump
    # (the re-run with waves goes on TAIL_CYCLES after the failure for that reason)
    zoom = REF_ZOOM + math.log2(NS_PER_PX_AT_REF / VIEW_NS_PER_PX)
    named = " ".join([str(t_ps)] + ["-1"] * 17)     # named markers A..: A on the failure
    lines = []
    for line in template.read_text().splitlines():
        if line.startswith("[dumpfile]"):
            line = f'[dumpfile] "{fst}"'
        elif line.startswith("[savefile]"):
            line = f'[savefile] "{out}"'
        elif line.startswith("[timestart]"):
            line = f"[timestart] {start_ps}"
        elif line.startswith("*"):
            line = f"*{zoom:.6f} {t_ps} {named}"
        elif line.startswith("[*] make:") or line.startswith("[*] open:"):
            continue
        lines.append(line)
    lines.insert(1, f"[*] written for a failing run: marker and marker A at {time_ns:g} ns "
                    f"(cycle {int(time_ns // period_ns)}); the failing output beat is the one "
                    "that ends there (sampled on that rising edge)")
    out.write_text("\n".join(lines) + "\n")
    return out
