"""``python -m pymodel qat`` and the quantize flags --bias-correction / --equalize."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pymodel import cli, datasets

from pymodel.training import digits

from pymodel.graph import inference
from pymodel.graph.artifact import load_artifact
from pymodel.graph.network import load_network


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def test_qat_help(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["qat", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("--freeze-epochs", "--lsq", "--ema-constant", "straight-through",
                 "--save-weights", "examples:"):
        assert word in out, word


def test_qat_command(capsys, tmp_path: Path, seed):
    art, w = tmp_path / "q", tmp_path / "w.npz"
    status, out, err = run(capsys, "qat", str(digits.NETWORK_YAML), "--weight-bits", "4",
                           "--granularity", "per_tensor", "--epochs", "1", "--freeze-epochs",
                           "1", "--train-images", "128", "--seed", str(seed % 1000),
                           "--out", str(art), "--save-weights", str(w), "--no-progress")
    assert status == 0, err
    assert "540 identical predictions, 540 identical int8 logit vectors" in out, out
    assert "test accuracy: float 98.52 %, PTQ 97.04 %" in out, out
    q = load_artifact(tmp_path / "q.yaml")
    assert q.meta["qat"]["epochs"] == 1 and q.meta["qat"]["train_images"] == 128
    assert all(l.weight_bits == 4 and l.weight_granularity == "per_tensor"
               for l in q.layers if l.has_weights)
    net = load_network(digits.NETWORK_YAML, weights=w)          # a valid network .npz
    te = datasets.digits("test")
    assert np.mean(net.forward(te.x).argmax(1) == te.y) > 0.9
    assert inference.predict(q, te.x[:5]).shape == (5,)


def test_quantize_equalize_and_bias_correction(capsys, tmp_path: Path):
    status, out, err = run(capsys, "quantize", str(digits.NETWORK_YAML), "--weight-bits", "4",
                           "--granularity", "per_tensor", "--equalize", "--bias-correction",
                           "--out", str(tmp_path / "q"), "--no-progress")
    assert status == 0, err
    assert "cross-layer equalization: conv1->conv2, conv2->fc1, fc1->fc2" in out
    assert "bias correction: conv1, conv2, fc1, fc2" in out
    q = load_artifact(tmp_path / "q.yaml")
    assert q.meta["ptq"]["bias_correction"] == ["conv1", "conv2", "fc1", "fc2"]
    assert q.meta["cross_layer_equalization"]["converged"] is True
    # --no-equalize / --no-bias-correction give back plain PTQ (the YAML has neither)
    status, _, err = run(capsys, "quantize", str(digits.NETWORK_YAML), "--no-equalize",
                         "--no-bias-correction", "--out", str(tmp_path / "p"), "--no-progress")
    assert status == 0, err
    p, shipped = load_artifact(tmp_path / "p.yaml"), load_artifact(digits.INT8_ARTIFACT)
    assert all(np.array_equal(v, shipped.arrays()[k]) for k, v in p.arrays().items())


def test_bad_qat_and_equalize_arguments_write_nothing(capsys, tmp_path: Path):
    stats = tmp_path / "s.npz"
    assert run(capsys, "calibrate", str(digits.NETWORK_YAML), "--images", "32", "--out",
               str(stats), "--no-progress")[0] == 0
    for argv, message in (
            (["quantize", "--stats", str(stats), "--equalize"],
             "--stats: cross-layer equalization changes the float network"),
            (["qat", "--epochs", "2", "--freeze-epochs", "3"], "freeze_epochs: 3 exceeds"),
            (["qat", "--lr", "0"], "lr: 0.0 is not a valid value"),
            (["qat", "--activation-bits", "9"], "activation_bits: 9 is outside"),
            (["qat", "--data", str(stats)], "has no array 'x'")):
        status, _, err = run(capsys, argv[0], str(digits.NETWORK_YAML), *argv[1:], "--out",
                             str(tmp_path / "q"), "--no-progress")
        assert status == 2 and message in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz"]
