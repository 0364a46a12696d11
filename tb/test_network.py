"""Whole-network simulation: a quantized-network artifact on ``qmac_top`` (AXI).

The cocotb test runs the artifact's layers on the RTL for a batch of digits test images
(``tb.network.run_network``), checks every layer's output exactly against the golden
model, and writes a JSON report; :func:`run` builds the engine, runs the test and prints
the per-layer table and summary.  ``make sim`` (``python -m tb.run``) calls :func:`run`
with the shipped INT8 digits artifact; the regression runs it on a few images with the
INT8 and the mixed INT4/INT8 artifacts.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cocotb
import numpy as np

from pymodel import datasets
from pymodel.graph.artifact import load_artifact
from pymodel.graph.inference import quantize_input, run_network as golden_network
from tb import kit
from tb import qmac_regs as R
from tb.network import NetworkReport, format_report, run_network  # noqa: F401 (format_report re-exported)
from tb.test_qmac_top import DEFAULT_PARAMETERS, SOURCES
from tb.top import TopEnv

DUT = "qmac_top"
MODEL_DIR = kit.REPO_ROOT / "models" / "digits"
DEFAULT_ARTIFACT = MODEL_DIR / "digits_cnn_int8.yaml"
FLOAT_NETWORK = MODEL_DIR / "digits_cnn.yaml"
ENV_ARTIFACT, ENV_IMAGES, ENV_REPORT, ENV_PROGRESS, ENV_DATA = (
    "QMAC_NET_ARTIFACT", "QMAC_NET_IMAGES", "QMAC_NET_REPORT", "QMAC_NET_PROGRESS",
    "QMAC_NET_DATA")
#: a .tflite model of models/tflite (imported with the "double" rounding profile, its
#: stored int8 test images) instead of an artifact: ``make sim MODEL=``
ENV_MODEL = "QMAC_NET_MODEL"
#: fault injection for the tests of the failure report: ``layer:row:col`` flips the low
#: bit of that element of the golden model's expected GEMM output (the RTL is right,
#: the scoreboard sees a mismatch there)
ENV_FAULT = "QMAC_NET_FAULT"
#: cycles the simulation goes on after a mismatch (set for the re-run with waves, so the
#: waveform shows what follows the failing beat and GTKWave can centre on it)
ENV_TAIL = "QMAC_NET_TAIL"
TAIL_CYCLES = 60


class Progress:
    """Progress of a network run in MACs, updated within a layer.

    A cocotb task samples the engine every ``every`` cycles: the MACs of the finished
    layers plus, for the running layer, the MAC-array beats since it started times
    ``ROWS * COLS`` (capped at the layer's MACs).  On a terminal it is a tqdm bar; when
    the stream is not a terminal (a log file, a pipe) it prints a plain line at every
    10 % instead of carriage returns.

    Args:
        qnet: the network (its layers' MACs per image).
        images: images in the batch.
        env: the running :class:`tb.top.TopEnv` (array beats, ROWS, COLS).
        stream: where to write (default stderr).
    """

    def __init__(self, qnet: Any, images: int, env: TopEnv, stream: Any = None) -> None:
        self.layer_macs = [l.macs * images for l in qnet.layers]
        self.total = sum(self.layer_macs)
        self.env = env
        self.stream = stream or sys.stderr
        self.done = 0                          # MACs of finished layers
        self.index = 0                         # the running layer
        self.base_beats = env.array_beats
        self.shown = 0
        self.name = qnet.name
        self.t0 = time.perf_counter()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = None
        self._next_line = 10
        if self.tty:
            from tqdm import tqdm
            self.bar = tqdm(total=self.total, unit="MAC", unit_scale=True,
                            desc=f"{qnet.name} on RTL", file=self.stream)

    def layer_done(self, macs: int) -> None:
        """run_network's callback: a layer finished."""
        self.done += self.layer_macs[self.index] if self.index < len(self.layer_macs) else macs
        self.index += 1
        self.base_beats = self.env.array_beats
        self._show(self.done)

    def sample(self) -> None:
        """Estimate the MACs done within the running layer and show them."""
        if self.index >= len(self.layer_macs):
            return
        slots = self.env.rows * self.env.cols
        inside = min(self.layer_macs[self.index], (self.env.array_beats - self.base_beats) * slots)
        self._show(self.done + inside)

    def _show(self, value: int) -> None:
        value = min(max(value, self.shown), self.total)
        if self.bar is not None:
            self.bar.update(value - self.shown)
        else:
            pct = 100 * value / self.total if self.total else 100
            while pct >= self._next_line and self._next_line <= 100:
                print(f"[qmac] {self.name} on RTL: {self._next_line:3d} % of "
                      f"{self.total:,} MACs ({time.perf_counter() - self.t0:.1f} s)",
                      file=self.stream, flush=True)
                self._next_line += 10
        self.shown = value

    async def run(self, every: int = 256) -> None:
        """The sampling task (``cocotb.start_soon(progress.run())``)."""
        from cocotb.triggers import ClockCycles
        while True:
            await ClockCycles(self.env.dut.clk_i, every)
            self.sample()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _inject_fault(spec: str) -> None:
    """Make the drivers' golden GEMM (``tb.top``'s and ``tb.engine``'s) wrong at one
    element (``layer:row:col``)."""
    import tb.engine as engine
    import tb.top as top

    name, row, col = spec.rsplit(":", 2)
    golden = engine.quantized_gemm

    def faulty(*args: Any, **kwargs: Any) -> np.ndarray:
        out = golden(*args, **kwargs)
        if kwargs.get("layer") == name:
            out = out.copy()
            out[int(row), int(col)] ^= 1
        return out

    engine.quantized_gemm = faulty
    top.quantized_gemm = faulty


@cocotb.test()
async def test_network(dut: Any) -> None:
    """The artifact's layers on the engine; every layer's output == the golden model's."""
    from tb.preflight import load_data

    if os.environ.get(ENV_FAULT):
        _inject_fault(os.environ[ENV_FAULT])
    images = int(os.environ.get(ENV_IMAGES, "4"))
    if os.environ.get(ENV_MODEL):
        from tb.test_units_network import load_model
        qnet, x8, labels = load_model(os.environ[ENV_MODEL])
        xq = np.ascontiguousarray(x8[:images]).astype(np.int8)
        test = datasets.Split(xq, labels[:images])
    else:
        artifact = Path(os.environ.get(ENV_ARTIFACT, DEFAULT_ARTIFACT))
        qnet = load_artifact(artifact)
        data = load_data(os.environ.get(ENV_DATA) or None, qnet)
        test = datasets.Split(data.x[:images], None if data.y is None else data.y[:images])
        xq = quantize_input(qnet, test.x)

    rng = kit.test_rng("test_network", dut._log)
    env = TopEnv(dut, rng)
    await env.start()
    failed = _tail_after_mismatch(env, int(os.environ.get(ENV_TAIL) or 0))

    bar = None
    if os.environ.get(ENV_PROGRESS) == "1":
        bar = Progress(qnet, images, env)
        cocotb.start_soon(bar.run())
    t0 = time.perf_counter()
    c0 = env.clock.cycle()
    out, layers = await run_network(env, qnet, xq, progress=bar.layer_done if bar else None)
    seconds = time.perf_counter() - t0
    wall = env.clock.cycle() - c0
    if bar is not None:
        bar.close()
    if failed:
        raise failed[0]

    golden_out = golden_network(qnet, xq)[-1]
    report = NetworkReport(          # the float column is filled in by run(), on the host
        network=qnet.name, images=images,
        engine={k: int(getattr(dut, k).value) for k in DEFAULT_PARAMETERS},
        layers=layers, labels=[] if test.y is None else test.y.tolist(),
        rtl_pred=out.reshape(images, -1).argmax(axis=1).tolist(),
        golden_pred=golden_out.reshape(images, -1).argmax(axis=1).tolist(), sim_seconds=seconds, top=DUT,
        counters={name: await env.read(R.OFFSET[name]) for name in R.OFFSET
                  if name.startswith("PERF_")}, wall_cycles=wall)
    if ENV_REPORT in os.environ:
        Path(os.environ[ENV_REPORT]).write_text(report.to_json())
    assert all(l.mismatches == 0 for l in layers)
    assert np.array_equal(out, golden_out), "network output differs from the golden model"


def _tail_after_mismatch(env: TopEnv, cycles: int) -> list[BaseException]:
    """With ``cycles > 0``: a mismatch ends the test ``cycles`` clock cycles later instead
    of at once (the waveform then shows what follows it).  Returns the list the first
    mismatch is recorded in."""
    failed: list[BaseException] = []
    if cycles <= 0:
        return failed
    check = env.out_mon.on_beat

    async def fail_later(exc: BaseException) -> None:
        from cocotb.triggers import ClockCycles
        await ClockCycles(env.dut.clk_i, cycles)
        raise exc

    def on_beat(beat: Any) -> None:
        if failed:
            return
        try:
            check(beat)
        except kit.Mismatch as exc:
            failed.append(exc)
            cocotb.start_soon(fail_later(exc))

    env.out_mon.on_beat = on_beat
    return failed


def run(parameters: dict | None = None, *, artifact: str | Path = DEFAULT_ARTIFACT,
        images: int | None = 16, waves: bool = False, seed: int | None = None,
        build_dir: Any = None, progress: bool = False, quiet: bool = False,
        data: str | Path | None = None, reproduce: str | None = None,
        extra_env: dict | None = None, model: str | Path | None = None) -> NetworkReport:
    """Build the engine, run ``artifact`` on ``images`` images, return the report.

    Everything that can be checked without the simulator is checked first
    (:mod:`tb.preflight`: engine parameters, every layer against them, the data against
    the artifact's input), so bad input is one ValueError line, not a traceback.

    Args:
        parameters: top parameter overrides (default: ``tb.test_qmac_top``'s).
        artifact: quantized-network artifact YAML.
        images: number of images from the start of the data (``None``: 16, or all of
            ``data`` if it holds fewer).
        data: ``.npy`` / ``.npz`` float images of the artifact's input shape (default:
            the digits test split).
        waves: dump an FST under the build directory.
        progress: show a progress bar (MACs done) while simulating.
        quiet: cocotb logs errors only (``make sim``); a failure is reported from the
            run's results (:mod:`tb.failure`), without cocotb's traceback.
        reproduce: the command that reproduces this run (``make sim ... SEED=n``), named
            in the failure message.
        extra_env: more environment for the simulator (e.g. :data:`ENV_FAULT`).
        model: a ``.tflite`` model of ``models/tflite`` instead of ``artifact`` / ``data``:
            imported with the ``"double"`` rounding profile and run on its stored int8
            test images (``images`` of them, default 1).

    Raises:
        tb.kit.TestbenchFailed: a layer's output differs from the golden model (the log
            names layer, element, tile, row, column and cycle) or the simulation failed;
            the run is then repeated with waves on (same seed, same run), so the
            waveform of the failure is left in the build directory, with a GTKWave
            save file ``failure.gtkw`` zoomed on the failing cycle.
    """
    from tb import preflight

    if model is not None:
        model = Path(model)
        if model.suffix != ".tflite" or not model.is_file():
            raise ValueError(f"MODEL / model: {str(model)!r} is not a .tflite file "
                             "(e.g. models/tflite/mobilenetv2_style.tflite)")
        from tb.test_units_network import load_model
        qnet, x8, labels = load_model(model)
        imgs = preflight.Data(x8, labels, f"{model.name}'s stored int8 test images")
        artifact = model
        if images is None:
            images = 1
    else:
        qnet = load_artifact(artifact)           # clear errors before building anything
    params = preflight.engine_parameters(DEFAULT_PARAMETERS, parameters)
    if params["ROWS"] != params["COLS"]:
        params["UNITS"] = 0      # the window / eltwise units need ROWS == COLS: GEMM-only top
    preflight.check_fits(qnet, params)
    if model is None:
        imgs = preflight.load_data(data, qnet)
    n_data = len(imgs.x)
    if images is None:
        images = min(16, n_data)
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise ValueError(f"IMAGES / --images: {images!r} must be a positive integer")
    if images > n_data:
        raise ValueError(f"IMAGES / --images: {images} exceeds the {n_data} images of "
                         f"{imgs.source}")
    fnet, float_source = ((None, "an imported TFLite model: the golden int8 model is the "
                                 "reference (docs/conformance.md)") if model is not None
                          else preflight.float_network(qnet, artifact))
    stem = Path(artifact).stem
    bdir = build_dir or kit.SIM_DIR / "build" / f"network-{stem}-{kit.param_tag(params)}"
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        # the images the host has checked go to the simulator as a plain .npz: it then
        # never imports scikit-learn / scipy (seconds of start-up under cocotb's
        # assertion rewriting)
        data_path = Path(tmp) / "data.npz"
        np.savez(data_path, x=imgs.x[:images],
                 **({"y": imgs.y[:images]} if imgs.y is not None else {}))
        env = {ENV_ARTIFACT: str(Path(artifact).resolve()), ENV_IMAGES: str(images),
               ENV_REPORT: str(report_path), ENV_PROGRESS: "1" if progress else "0",
               ENV_DATA: str(data_path)}
        if model is not None:
            env[ENV_MODEL] = str(model.resolve())
        env.update(extra_env or {})
        if quiet:
            env.update(COCOTB_LOG_LEVEL="ERROR", GPI_LOG_LEVEL="ERROR")
        def simulate(with_waves: bool, rerun: bool = False) -> None:
            run_env = dict(env, **{ENV_TAIL: str(TAIL_CYCLES)},
                           **({ENV_PROGRESS: "0"} if rerun else {}))
            kit.run_testbench(toplevel=DUT, sources=kit.rtl_sources(*SOURCES),
                              test_module="tb.test_network", parameters=params,
                              waves=with_waves, seed=seed, build_dir=bdir, extra_env=run_env,
                              dut_name=f"network-{stem}", reproduce=reproduce)
        try:
            simulate(waves)
        except kit.TestbenchFailed as exc:
            raise _failed(exc, Path(bdir), waves, simulate, reproduce) from None
        rep = NetworkReport.from_json(report_path.read_text())
    rep.data_source = imgs.source
    rep.float_source = float_source
    if fnet is not None:
        rep.float_pred = fnet.forward(imgs.x[:images]).argmax(axis=1).tolist()
    return rep


def _failed(exc: kit.TestbenchFailed, bdir: Path, waves: bool, simulate: Any,
            reproduce: str | None) -> kit.TestbenchFailed:
    """The exception a failed network run raises: the failing test's own message (from
    ``results.xml``, not cocotb's traceback), the waveform (re-running with waves if
    there was none: the same seed replays the same run) with a save file zoomed on the
    failing cycle, and the command that reproduces the run."""
    from tb import failure

    xmls = [bdir / "results.xml"] + sorted(bdir.glob("*.result.xml"),   # (under pytest)
                                            key=lambda p: p.stat().st_mtime, reverse=True)
    fail = next((f for f in map(failure.read_failure, xmls) if f is not None), None)
    fst = bdir / f"{DUT}.fst"
    if not waves:
        print("[qmac] network run failed; re-running it with waves to leave the waveform",
              flush=True)
        try:
            simulate(True, rerun=True)
        except kit.TestbenchFailed:
            pass
    lines = [fail.message if fail and fail.message else str(exc)]
    if reproduce:
        lines.append(f"reproduce: {reproduce}")
    if fst.is_file():
        shown = fst.relative_to(kit.REPO_ROOT) if fst.is_relative_to(kit.REPO_ROOT) else fst
        cycle = failure.cycle_of(fail) if fail is not None else None
        if cycle is not None:
            t_ns = cycle * 10                       # kit.ClockReset: edge n at n * 10 ns
            gtkw = failure.write_gtkw(kit.SIM_DIR / "qmac_top.gtkw", bdir / "failure.gtkw",
                                      fst, t_ns)
            gshown = gtkw.relative_to(kit.REPO_ROOT) if gtkw.is_relative_to(kit.REPO_ROOT) \
                else gtkw
            lines.append(f"waveform: gtkwave {shown} {gshown}   (opens on the failing "
                         f"cycle {cycle}: marker A at {t_ns} ns)")
        else:
            lines.append(f"waveform: gtkwave {shown} sim/qmac_top.gtkw")
    return kit.TestbenchFailed("\n".join(lines))


def main(images: int | None = None, waves: bool = False,
         artifact: str | Path = DEFAULT_ARTIFACT, data: str | Path | None = None,
         parameters: dict | None = None, reproduce: str | None = None,
         extra_env: dict | None = None, model: str | Path | None = None) -> int:
    """``make sim``: run the network and print the tables."""
    from tb.preflight import engine_parameters
    rep = run(parameters, artifact=artifact, images=images, waves=waves, progress=True,
              quiet=True, data=data, reproduce=reproduce, extra_env=extra_env, model=model)
    print(format_report(rep))
    if waves:
        params = engine_parameters(DEFAULT_PARAMETERS, parameters)
        fst = (kit.SIM_DIR / "build" / f"network-{Path(artifact).stem}-{kit.param_tag(params)}"
               / f"{DUT}.fst").relative_to(kit.REPO_ROOT)
        print(f"\nwaveform: {fst}\nopen with: gtkwave {fst} sim/qmac_top.gtkw")
    return 0
