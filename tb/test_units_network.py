"""A whole imported TFLite model on the three engines (``tb/hdl/qmac_units.v``).

The cocotb test imports ``$QMAC_UNITS_MODEL`` (a ``.tflite`` file of ``models/tflite``)
with the ``"double"`` rounding profile (gemmlowp rounding in every op, what the RTL
implements; LiteRT's reference FULLY_CONNECTED rescales differently -- see
``docs/arithmetic.md`` 8.12), runs the first ``$QMAC_UNITS_IMAGES`` stored int8 test images
through :func:`tb.units.run_units_network` (conv / FC on ``qlayer_engine``, depthwise /
pooling / MEAN on ``window_engine``, ADD / SUB / MUL on ``eltwise_engine``, the rest on the
host), checks every layer's output exactly against the golden model and writes a JSON
report.  :func:`run` builds and runs it; :func:`main` prints the per-layer table
(``tests/test_rtl_units_network.py``).  ``make sim MODEL=`` runs the same model through
``qmac_top``, which contains the three units (``tb/test_network.py``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cocotb
import numpy as np

from tb import kit
from tb.network import LayerReport

DUT = "qmac_units"
HDL_TOP = kit.REPO_ROOT / "tb" / "hdl" / "qmac_units.v"
SOURCES = ("qlayer_engine.v", "mac_*.v", "requant_*.v", "window_*.v", "eltwise_*.v")
ENV_MODEL, ENV_IMAGES, ENV_REPORT = "QMAC_UNITS_MODEL", "QMAC_UNITS_IMAGES", "QMAC_UNITS_REPORT"


def load_model(path: str | Path) -> tuple[Any, np.ndarray, np.ndarray]:
    """(network, int8 test images, labels) of a ``models/tflite`` model."""
    from pymodel.frontends.tflite_import import import_tflite
    path = Path(path)
    qnet = import_tflite(path, rounding="double")
    data = np.load(path.with_name(path.stem + "_test.npz"))
    return qnet, data["x_int8"], data["labels"]


@cocotb.test()
async def test_units_network(dut: Any) -> None:
    """Every layer on its unit; every layer's output == the golden model's."""
    from pymodel.graph.inference import run_network as golden_network
    from tb.units import run_units_network, start_units

    qnet, x, labels = load_model(os.environ[ENV_MODEL])
    n = int(os.environ.get(ENV_IMAGES, "1"))
    xq = np.ascontiguousarray(x[:n]).astype(np.int8)
    rng = kit.test_rng("test_units_network", dut._log)
    units = await start_units(dut, rng)
    t0 = time.perf_counter()
    out, layers = await run_units_network(units, qnet, xq)
    seconds = time.perf_counter() - t0         # in the simulator, no build / start-up
    golden = golden_network(qnet, xq)[-1]
    report = {"network": qnet.name, "images": n, "layers": [asdict(l) for l in layers],
              "rtl_pred": out.reshape(n, -1).argmax(axis=1).tolist(),
              "golden_pred": golden.reshape(n, -1).argmax(axis=1).tolist(),
              "labels": labels[:n].tolist(), "sim_seconds": seconds,
              "cycles": sum(l.cycles + l.load_cycles for l in layers)}
    if ENV_REPORT in os.environ:
        Path(os.environ[ENV_REPORT]).write_text(json.dumps(report))
    assert all(l.mismatches == 0 for l in layers), "a layer differs from the golden model"
    assert np.array_equal(out, golden), "network output differs from the golden model"


def check_model_args(model: str | Path, images: int) -> Path:
    """``model`` as a Path if it is a ``.tflite`` file and ``images`` in 1..64; else
    ValueError (one line naming the variable)."""
    model = Path(model)
    if model.suffix != ".tflite" or not model.is_file():
        raise ValueError(f"MODEL / model: {str(model)!r} is not a .tflite file "
                         "(e.g. models/tflite/mobilenetv2_style.tflite)")
    if isinstance(images, bool) or not isinstance(images, int) or not 1 <= images <= 64:
        raise ValueError(f"IMAGES / images: {images!r} must be an integer in 1..64 "
                         "(the stored test images)")
    return model


def run(model: str | Path = kit.REPO_ROOT / "models" / "tflite" / "resnet_style.tflite",
        images: int = 1, *, seed: int | None = None, waves: bool = False,
        quiet: bool = False) -> dict:
    """Build ``qmac_units``, run ``model`` on ``images`` test images; returns the report."""
    model = check_model_args(model, images)
    bdir = kit.SIM_DIR / "build" / f"units-{model.stem}"
    with tempfile.TemporaryDirectory() as tmp:
        rpath = Path(tmp) / "report.json"
        env = {ENV_MODEL: str(model.resolve()), ENV_IMAGES: str(images), ENV_REPORT: str(rpath)}
        if quiet:
            env.update(COCOTB_LOG_LEVEL="WARNING", GPI_LOG_LEVEL="ERROR")
        kit.run_testbench(toplevel=DUT, sources=[HDL_TOP, *kit.rtl_sources(*SOURCES)],
                          test_module="tb.test_units_network", waves=waves, seed=seed,
                          build_dir=bdir, extra_env=env, dut_name=f"units-{model.stem}")
        return json.loads(rpath.read_text())


def main(model: str | Path, images: int = 1, waves: bool = False) -> int:
    """``make sim MODEL=...``: run and print the per-layer table."""
    from tb.units import format_units_report
    rep = run(model, images, waves=waves, quiet=True)
    layers = [LayerReport(**{**l, "out_shape": tuple(l["out_shape"]),
                             "gemm": tuple(l["gemm"]) if l["gemm"] else None})
              for l in rep["layers"]]
    print(format_units_report(rep["network"], rep["images"], layers,
                              {"RTL": rep["rtl_pred"], "golden": rep["golden_pred"],
                               "label": rep["labels"]}))
    return 0
