"""``python -m pymodel``: demo, calibrate -> quantize -> eval, and bad input that writes
nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from pymodel import cli

from pymodel.training import digits

from pymodel.quantization import ptq
from pymodel.graph.artifact import load_artifact


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "calibrate" in out and "demo" in out


def test_demo(capsys):
    status, out, _ = run(capsys, "demo", "--images", "3")
    assert status == 0
    assert "conv1" in out and "fully_connected" in out
    assert "total MACs per image: 31552" in out            # 4608 + 18432 + 8192 + 320
    assert "int8 correct" in out
    rows = [ln for ln in out.splitlines() if ln[:5].strip().isdigit() and len(ln.split()) > 4]
    assert len(rows) == 3


def test_calibrate_quantize_eval(capsys, tmp_path: Path):
    stats = tmp_path / "stats.npz"
    status, out, err = run(capsys, "calibrate", str(digits.NETWORK_YAML), "--images", "64",
                           "--out", str(stats), "--no-progress")
    assert status == 0, err
    assert set(ptq.load_stats(stats)) == {"input", "conv1", "conv2", "fc1", "fc2"}
    art = tmp_path / "q"
    status, out, err = run(capsys, "quantize", str(digits.NETWORK_YAML), "--stats", str(stats),
                           "--calibrator", "entropy", "--layer-bits", "fc1=4", "--out",
                           str(art), "--no-progress")
    assert status == 0, err
    q = load_artifact(tmp_path / "q.yaml")
    assert q.layer("fc1").weight_bits == 4 and q.layer("conv1").weight_bits == 8
    assert q.layer("fc2").output.calibrator == "entropy"
    status, out, err = run(capsys, "eval", str(tmp_path / "q.yaml"), "--images", "100",
                           "--no-progress")
    assert status == 0, err
    assert "int accuracy" in out and "agreement with float predictions" in out


def bad_network(tmp_path: Path, edit) -> Path:
    cfg = yaml.safe_load(digits.NETWORK_YAML.read_text())
    cfg["weights"] = str(digits.MODEL_DIR / "digits_cnn.npz")
    edit(cfg)
    p = tmp_path / "net.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def assert_nothing_written(tmp_path: Path, keep: set[str]) -> None:
    assert {p.name for p in tmp_path.iterdir()} == keep


def test_misspelled_key_is_an_error_and_writes_nothing(capsys, tmp_path: Path):
    net = bad_network(tmp_path, lambda c: c["layers"][1].update(strid=2))
    status, _, err = run(capsys, "quantize", str(net), "--out", str(tmp_path / "q"),
                         "--no-progress")
    assert status == 2
    assert "layers[1].strid: unknown key (did you mean 'stride'?)" in err
    assert_nothing_written(tmp_path, {"net.yaml"})


def test_missing_tensor_is_an_error_and_writes_nothing(capsys, tmp_path: Path):
    w = dict(np.load(digits.MODEL_DIR / "digits_cnn.npz"))
    del w["conv2.weight"]
    np.savez(tmp_path / "w.npz", **w)
    status, _, err = run(capsys, "quantize", str(digits.NETWORK_YAML), "--weights",
                         str(tmp_path / "w.npz"), "--out", str(tmp_path / "q"), "--no-progress")
    assert status == 2
    assert "no tensor 'conv2.weight'" in err
    assert_nothing_written(tmp_path, {"w.npz"})


def test_bad_calibration_data_writes_nothing(capsys, tmp_path: Path, rng):
    x = rng.uniform(size=(10, 8, 8, 1))
    x[3, 4, 4, 0] = np.nan
    np.savez(tmp_path / "d.npz", x=x)
    for argv, message in (
            (["--data", str(tmp_path / "d.npz")], "tensor 'input': contains nan"),
            (["--images", "0"], "gives no images (empty calibration / evaluation set)")):
        status, _, err = run(capsys, "quantize", str(digits.NETWORK_YAML), *argv, "--out",
                             str(tmp_path / "q"), "--no-progress")
        assert status == 2 and message in err, err
        status, _, err = run(capsys, "calibrate", str(digits.NETWORK_YAML), *argv, "--out",
                             str(tmp_path / "s.npz"), "--no-progress")
        assert status == 2 and message in err, err
    assert_nothing_written(tmp_path, {"d.npz"})


def test_ctrl_c_during_quantize_writes_nothing(capsys, tmp_path: Path, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ptq, "quantize_network", interrupted)
    status, _, err = run(capsys, "quantize", str(digits.NETWORK_YAML), "--images", "8",
                         "--out", str(tmp_path / "q"), "--no-progress")
    assert status == 130 and "interrupted" in err
    assert_nothing_written(tmp_path, set())


def test_bad_layer_bits_and_calibrator(capsys, tmp_path: Path):
    for argv, message in ((["--layer-bits", "fc1:4"], "--layer-bits: 'fc1:4' is not LAYER=BITS"),
                          (["--layer-bits", "fc7=4"], "'fc7' is not a weight layer"),
                          (["--calibrator", "kld"], "--calibrator: 'kld' is not a calibrator")):
        status, _, err = run(capsys, "quantize", str(digits.NETWORK_YAML), *argv, "--out",
                             str(tmp_path / "q"))
        assert status == 2 and message in err, err
    assert_nothing_written(tmp_path, set())
