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
from pymodel.artifact import load_artifact
from pymodel.inference import quantize_input, run_network as golden_network
from tb import kit
from tb import qmac_regs as R
from tb.network import NetworkReport, format_report, run_network  # noqa: F401 (format_report re-exported)
from tb.test_qmac_top import DEFAULT_PARAMETERS, SOURCES
from tb.top import TopEnv

DUT = "qmac_top"
MODEL_DIR = kit.REPO_ROOT / "models" / "digits"
DEFAULT_ARTIFACT = MODEL_DIR / "digits_cnn_int8.yaml"
FLOAT_NETWORK = MODEL_DIR / "digits_cnn.yaml"
ENV_ARTIFACT, ENV_IMAGES, ENV_REPORT, ENV_PROGRESS = (
    "QMAC_NET_ARTIFACT", "QMAC_NET_IMAGES", "QMAC_NET_REPORT", "QMAC_NET_PROGRESS")


@cocotb.test()
async def test_network(dut: Any) -> None:
    """The artifact's layers on the engine; every layer's output == the golden model's."""
    from pymodel.network import load_network

    artifact = Path(os.environ.get(ENV_ARTIFACT, DEFAULT_ARTIFACT))
    images = int(os.environ.get(ENV_IMAGES, "4"))
    qnet = load_artifact(artifact)
    test = datasets.digits("test").head(images)
    xq = quantize_input(qnet, test.x)

    rng = kit.test_rng("test_network", dut._log)
    env = TopEnv(dut, rng)
    await env.start()

    bar = None
    if os.environ.get(ENV_PROGRESS) == "1":
        from tqdm import tqdm
        bar = tqdm(total=sum(l.macs for l in qnet.layers) * images, unit="MAC", unit_scale=True,
                   desc=f"{qnet.name} on RTL", file=sys.stderr)
    t0 = time.perf_counter()
    c0 = env.clock.cycle()
    out, layers = await run_network(env, qnet, xq, progress=bar.update if bar else None)
    seconds = time.perf_counter() - t0
    wall = env.clock.cycle() - c0
    if bar is not None:
        bar.close()

    golden_out = golden_network(qnet, xq)[-1]
    float_out = load_network(FLOAT_NETWORK).forward(test.x)
    report = NetworkReport(
        network=qnet.name, images=images,
        engine={k: int(getattr(dut, k).value) for k in DEFAULT_PARAMETERS},
        layers=layers, labels=test.y.tolist(), rtl_pred=out.argmax(axis=1).tolist(),
        golden_pred=golden_out.argmax(axis=1).tolist(),
        float_pred=float_out.argmax(axis=1).tolist(), sim_seconds=seconds,
        counters={name: await env.read(R.OFFSET[name]) for name in R.OFFSET
                  if name.startswith("PERF_")}, wall_cycles=wall)
    if ENV_REPORT in os.environ:
        Path(os.environ[ENV_REPORT]).write_text(report.to_json())
    assert all(l.mismatches == 0 for l in layers)
    assert np.array_equal(out, golden_out), "network output differs from the golden model"


def run(parameters: dict | None = None, *, artifact: str | Path = DEFAULT_ARTIFACT,
        images: int = 16, waves: bool = False, seed: int | None = None,
        build_dir: Any = None, progress: bool = False, quiet: bool = False) -> NetworkReport:
    """Build the engine, run ``artifact`` on ``images`` digits test images, return the report.

    Args:
        parameters: top parameter overrides (default: ``tb.test_qmac_top``'s).
        artifact: quantized-network artifact YAML.
        images: number of test images, from the start of the digits test split.
        waves: dump an FST under the build directory.
        progress: show a progress bar (MACs done) while simulating.
        quiet: cocotb logs warnings only (``make sim``).

    Raises:
        tb.kit.TestbenchFailed: a layer's output differs from the golden model (the log
            names layer, element, tile, row, column and cycle) or the simulation failed;
            the run is then repeated with waves on (same seed, same run), so the
            waveform of the failure is left in the build directory.
    """
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise ValueError(f"IMAGES / --images: {images!r} must be a positive integer")
    n_test = len(datasets.digits("test"))
    if images > n_test:
        raise ValueError(f"IMAGES / --images: {images} exceeds the {n_test} digits test images")
    load_artifact(artifact)                      # clear errors before building anything
    params = dict(DEFAULT_PARAMETERS, **(parameters or {}))
    stem = Path(artifact).stem
    bdir = build_dir or kit.SIM_DIR / "build" / f"network-{stem}-{kit.param_tag(params)}"
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        env = {ENV_ARTIFACT: str(Path(artifact).resolve()), ENV_IMAGES: str(images),
               ENV_REPORT: str(report_path), ENV_PROGRESS: "1" if progress else "0"}
        if quiet:
            env.update(COCOTB_LOG_LEVEL="WARNING", GPI_LOG_LEVEL="ERROR")
        def simulate(with_waves: bool) -> None:
            kit.run_testbench(toplevel=DUT, sources=kit.rtl_sources(*SOURCES),
                              test_module="tb.test_network", parameters=params,
                              waves=with_waves, seed=seed, build_dir=bdir, extra_env=env,
                              dut_name=f"network-{stem}")
        try:
            simulate(waves)
        except kit.TestbenchFailed as exc:
            if waves:
                raise
            # Leave the waveform of the failure: the same seed replays the same run.
            print(f"[qmac] network run failed; re-running it with waves to leave the "
                  f"waveform in {Path(bdir) / (DUT + '.fst')}", flush=True)
            try:
                simulate(True)
            except kit.TestbenchFailed:
                pass
            raise kit.TestbenchFailed(f"{exc}; waveform: {Path(bdir) / (DUT + '.fst')} "
                                      f"(open with sim/qmac_top.gtkw)") from None
        return NetworkReport.from_json(report_path.read_text())


def main(images: int = 16, waves: bool = False, artifact: str | Path = DEFAULT_ARTIFACT) -> int:
    """``make sim``: run the network and print the tables."""
    rep = run(artifact=artifact, images=images, waves=waves, progress=True, quiet=True)
    print(format_report(rep))
    if waves:
        params = dict(DEFAULT_PARAMETERS)
        fst = (kit.SIM_DIR / "build" / f"network-{Path(artifact).stem}-{kit.param_tag(params)}"
               / f"{DUT}.fst").relative_to(kit.REPO_ROOT)
        print(f"\nwaveform: {fst}\nopen with: gtkwave {fst} sim/qmac_top.gtkw")
    return 0
