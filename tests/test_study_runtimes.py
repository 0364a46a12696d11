"""pymodel.study.runtimes: which arithmetic each TFLite runtime uses, pinned.

The study's inputs are fixed (bundled images + random inputs from its own seed 0), so its
counts are exact numbers for the pinned runtime versions (requirements.txt).  A LiteRT or
TFLM upgrade that changes a kernel's arithmetic fails here, and the report
(``python -m pymodel.study.runtimes``) says where.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pymodel.study import runtimes as study

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "tflite"


@pytest.fixture(scope="module")
def result() -> dict:
    return study.study(MODEL_DIR, n_random=64, seed=0)


def _cell(result: dict, op: str, runtime: str) -> dict:
    return next(r for r in result["per_op"] if r["op"] == op and r["runtime"] == runtime)


def _rounding(result: dict, op: str, runtime: str) -> dict[str, int]:
    return {r["mode"]: r["count"] for r in result["rounding"]
            if r["op"] == op and r["runtime"] == runtime}


def test_every_runtime_and_op_is_measured(result: dict) -> None:
    assert result["runtimes"] == ["litert-ref", "litert-opt", "litert-xnnpack", "tflm"]
    ops = {r["op"] for r in result["per_op"]}
    assert len(ops) == 24
    for d in result["inputs"]:
        assert d["real"] >= 64 and d["random"] >= 64


def test_single_op_cut_out_is_exact(result: dict) -> None:
    """Each op run alone under the reference kernels reproduces the full run."""
    for row in result["per_op"]:
        if row["runtime"] == "litert-ref":
            assert row["differing"] == 0, row


def test_rounding_attribution(result: dict) -> None:
    """The arithmetic of each runtime's CONV_2D / FULLY_CONNECTED, from the source."""
    assert _rounding(result, "CONV_2D", "litert-ref")["double"] == 0
    assert _rounding(result, "CONV_2D", "tflm")["double"] == 0
    assert _rounding(result, "CONV_2D", "litert-opt")["double, ties up"] == 0
    assert _rounding(result, "CONV_2D", "litert-xnnpack")["float32 even"] == 0
    # LiteRT's reference FULLY_CONNECTED rescales in floating point; TFLM is the integer path
    assert _rounding(result, "FULLY_CONNECTED", "litert-ref")["float64"] == 0
    assert _rounding(result, "FULLY_CONNECTED", "litert-ref")["double"] == 122
    assert _rounding(result, "FULLY_CONNECTED", "tflm")["double"] == 0
    assert _rounding(result, "FULLY_CONNECTED", "litert-opt")["double, ties up"] == 0


def test_pinned_differences(result: dict) -> None:
    """TFLM differs from LiteRT's reference kernels only where LiteRT rescales in float."""
    tflm = {r["op"]: r["differing"] for r in result["per_op"] if r["runtime"] == "tflm"}
    assert {op: n for op, n in tflm.items() if n} == {"FULLY_CONNECTED": 122}
    assert _cell(result, "MEAN keep_dims=True", "litert-opt")["differing"] == 502
    assert _cell(result, "CONV_2D", "litert-opt")["differing"] == 1663
    assert _cell(result, "FULLY_CONNECTED", "litert-opt")["differing"] == 132


def test_elementwise_ops_exhaustively(result: dict) -> None:
    """All 256 int8 inputs of every one-input element-wise op: TFLM's integer kernels and
    LiteRT's optimized kernels equal the reference ones (LOGISTIC's float table included)."""
    rows = result["exhaustive"]
    assert {r["op"] for r in rows} == {"DEQUANTIZE", "HARD_SWISH", "LEAKY_RELU", "LOGISTIC",
                                       "QUANTIZE int8->int8", "RELU", "RELU6"}
    for r in rows:
        assert r["compared"] >= 256
        if r["runtime"] in ("litert-ref", "tflm") or (
                r["runtime"] == "litert-opt" and r["op"] != "DEQUANTIZE"):
            assert r["differing"] == 0, r


def test_report_is_deterministic(result: dict, tmp_path: Path) -> None:
    assert study.main(["--out", str(tmp_path), "--only", "float_io"]) == 0
    first = (tmp_path / "runtimes.md").read_bytes()
    assert study.main(["--out", str(tmp_path), "--only", "float_io"]) == 0
    assert (tmp_path / "runtimes.md").read_bytes() == first
    text = study.render_markdown(result)
    assert text == study.render_markdown(result)
    assert "| FULLY_CONNECTED | 0 / 105472 | 132 / 105472 (1) | 0 / 105472 | 122 / 105472 (1) |" in text


def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert study.main(["--models", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qmac: --models:") and "holds no .tflite file" in err
    assert "\n" not in err and not (tmp_path / "o").exists()
    assert study.main(["--random", "-1", "--out", str(tmp_path / "o")]) == 2
    assert "--random: -1 is negative" in capsys.readouterr().err
