"""QAT (pymodel.quantization.qat): the training code against numerical gradients with fake quant
inserted, the starting point == PTQ, and integer predictions == fake-quant predictions
image by image after fine-tuning and conversion (through a save / load of the artifact)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from numgrad import central_differences
from pymodel import datasets
from pymodel.training import digits
from pymodel.graph import inference
from pymodel.quantization import ptq, qat
from pymodel.graph.artifact import load_artifact, save_artifact
from pymodel.graph.network import parse_network
from pymodel.arithmetic.qparams import quantize

# Every op QAT handles: conv (same padding, stride 2), depthwise (relu6), max / average
# pooling (the integer average rounds), flatten, fully connected.
TINY = {
    "name": "tiny",
    "input": {"shape": [6, 5, 2], "quant": {"calibrator": "minmax"}},
    "quant": {"weights": {"bits": 4, "granularity": "per_channel"},
              "activations": {"bits": 8, "calibrator": "minmax"}},
    "layers": [
        {"name": "c", "op": "conv2d", "filters": 3, "kernel": 3, "stride": 2, "padding": "same",
         "activation": "relu"},
        {"name": "d", "op": "depthwise_conv2d", "depth_multiplier": 2, "kernel": [2, 2],
         "padding": "same", "activation": "relu6",
         "quant": {"weights": {"bits": 8, "granularity": "per_tensor"}}},
        {"name": "mp", "op": "max_pool2d", "pool": 2, "stride": 1},
        {"name": "ap", "op": "avg_pool2d", "pool": 2, "padding": "same"},
        {"name": "f", "op": "flatten"},
        {"name": "fc", "op": "fully_connected", "units": 4},
    ],
}



def tiny_network(rng: np.random.Generator, config: dict = TINY):
    from pymodel.training import nn
    net = parse_network(config, None)
    model = nn.from_network(net, rng, init=True)
    params = model.state()
    for k in params:
        if k.endswith(".bias"):
            params[k] = rng.normal(0.0, 0.3, size=params[k].shape)
    return parse_network(config, params)


def test_qat_backward_matches_numerical_gradient(rng):
    """The STE backward of the whole fake-quant network is the exact gradient of its
    linearization: every quantizer's parameters, clip masks and rounding offsets frozen
    at the current point (``set_linearize``).  Central differences of that surrogate
    must equal ``backward`` for every weight, bias and input element.

    Fake-quant values lie on grids, so at the point itself a ReLU input can be exactly 0
    (``acc + b_q == 0``) and a max-pool window can hold exact ties -- kinks where no
    derivative exists.  The frozen offsets get a random jitter of up to 1e-2 (values are
    O(0.1..10)), which leaves the surrogate's derivative structure as it is and puts the
    nearest kink typically ~1e-3 away, far outside the +-1e-6 of the differences."""
    net = tiny_network(rng)
    x = rng.normal(0.5, 1.0, size=(3, 6, 5, 2))
    # ranges at 70 % of the float network's: values clip (at least in the input and the
    # first layer), so the zero-gradient branch of the STE is exercised too
    ranges = {k: (0.7 * lo, 0.7 * hi) for k, (lo, hi) in qat.initial_ranges(net, x).items()}
    qn = qat.QATNetwork(net, ranges)
    r = rng.normal(size=(3, 4))
    qn.forward(x)
    clipped = {q.name: int(np.sum(~q._cache[2])) for q in qn.quantizers()}
    print("clipped values per tensor:", clipped)
    assert clipped["input"] > 0 and clipped["c"] > 0, clipped
    qn.set_linearize(True, jitter=1e-2, rng=rng)
    base = qn.forward(x)                            # freezes offsets and parameters here

    def loss() -> float:
        return float(np.sum(qn.forward(x) * r))

    assert np.array_equal(qn.forward(x), base)
    qn.forward(x)
    dx = qn.backward(r)
    grads = {name: g.copy() for name, _, g in qn.parameters()}
    worst = 0.0
    for name, p, _ in qn.parameters():
        num, _ = central_differences(loss, p)         # jittered: every coordinate counts
        err = float(np.abs(num - grads[name]).max()) / max(1.0, float(np.abs(num).max()))
        worst = max(worst, err)
        assert np.abs(grads[name]).max() > 0, name          # the STE lets gradients through
    xn, _ = central_differences(loss, x)
    worst = max(worst, float(np.abs(xn - dx).max()) / max(1.0, float(np.abs(xn).max())))
    # As in test_ptq_train: the surrogate is piecewise linear, central differences are
    # exact away from kinks (ReLU / ReLU6 / max-pool switches) up to float64
    # cancellation ~ 1e-16 / eps = 1e-10.  Bound: 1e-7.
    print(f"worst relative gradient error {worst:.2e}")
    assert worst < 1e-7, worst
    qn.set_linearize(False)


def test_qat_start_is_ptq(rng):
    """Before training, the converted QAT network is the PTQ artifact, array for array."""
    net = digits.load().with_overrides(weight_bits=4, granularity="per_tensor")
    cal = datasets.digits("calib")
    p = ptq.calibrate(net, cal.x)
    a = qat.convert(qat.build(net, cal.x))
    assert set(a.arrays()) == set(p.arrays())
    for k, v in p.arrays().items():
        assert a.arrays()[k].dtype == v.dtype and np.array_equal(a.arrays()[k], v), k
    for qa, qp_ in zip(a.layers, p.layers):
        assert (qa.output.scale, qa.output.zero_point, qa.act_min, qa.act_max) == \
            (qp_.output.scale, qp_.output.zero_point, qp_.act_min, qp_.act_max)


def _check_agreement(qn: qat.QATNetwork, art, x: np.ndarray, label: str) -> None:
    """Image by image: prediction and int8 logits of the fake-quant network == the
    integer network's; also every intermediate int8 tensor."""
    n_same = 0
    for i in range(x.shape[0]):
        xi = x[i:i + 1]
        fq = qn.forward(xi)
        outs = inference.run_network(art, inference.quantize_input(art, xi))
        for j, (a, b) in enumerate(zip(qn.last_int, outs)):
            assert a.dtype == b.dtype and np.array_equal(a, b), \
                f"{label}: image {i}, layer {art.layers[j].name}: {a.ravel()} != {b.ravel()}"
            # the float path (what the backward pass differentiates) carries exactly
            # the integer path's values
            assert np.array_equal(qn.last_values[j],
                                  inference.dequantize(b, art.layers[j].output)), (label, i, j)
        assert np.array_equal(fq, inference.dequantize(outs[-1], art.output)), (label, i)
        assert int(fq.argmax()) == int(outs[-1].argmax()), (label, i)
        n_same += 1
    print(f"{label}: {n_same}/{x.shape[0]} images: identical int8 tensors in every layer, "
          "identical predictions")


def test_qat_integer_equals_fake_quant_digits(rng, seed, tmp_path: Path):
    """Fine-tune (short, seeded by the test seed), convert, save, load: on every one of
    the 540 test images the integer network predicts what the fake-quant network
    predicts, with identical int8 logits."""
    t0 = time.perf_counter()
    tr, cal, te = (datasets.digits(s) for s in ("train", "calib", "test"))
    cfg = qat.QATConfig(epochs=2, freeze_epochs=1, seed=seed % 1000)
    configs = {"W4A8 per-tensor": digits.load().with_overrides(weight_bits=4,
                                                                granularity="per_tensor"),
               "mixed fc1=4": digits.load().with_overrides(layer_weight_bits={"fc1": 4})}
    for label, net in configs.items():
        sub = rng.choice(len(tr), 256, replace=False)
        qn, hist = qat.finetune(net, tr.x[sub], tr.y[sub], cal.x, cfg)
        art = qat.convert(qn)
        path = save_artifact(art, tmp_path / label.replace(" ", "_").replace("=", ""))
        loaded = load_artifact(path)
        _check_agreement(qn, loaded, te.x, label)
        ag = qat.compare(qn, loaded, te.x)
        assert (ag.same_prediction, ag.same_logits, ag.mismatches) == (540, 540, [])
    print(f"{time.perf_counter() - t0:.1f} s")


@pytest.mark.parametrize("lsq", [False, True], ids=["ema", "lsq"])
def test_qat_integer_equals_fake_quant_tiny(rng, seed, lsq):
    """The same on a network with depthwise / ReLU6 / max and average pooling, after a
    few training steps (LSQ: the learned scales move and are used by the artifact)."""
    net = tiny_network(rng)
    x = rng.normal(0.5, 1.0, size=(64, 6, 5, 2))
    y = rng.integers(0, 4, size=64)
    cfg = qat.QATConfig(epochs=3, freeze_epochs=1, lr=1e-2, batch_size=16, lsq=lsq,
                        seed=seed % 1000, ema_constant=0.1)
    qn, _ = qat.finetune(net, x, y, x[:16], cfg)
    if lsq:
        start = qat.build(net, x[:16], cfg)
        start.forward(x[:1])
        moved = [n for n, wq in qn.weight_quant.items()
                 if not np.array_equal(wq.scale, start.weight_quant[n].scale)]
        assert moved, "LSQ scales did not move"
    else:
        assert all(q.frozen for q in qn.quantizers())
        assert all(q.updates == 2 * 4 for q in qn.quantizers())     # 2 epochs x 4 steps
    art = qat.convert(qn)
    if lsq:
        for name, wq in qn.weight_quant.items():
            assert np.array_equal(art.layer(name).weight_scale,
                                  np.broadcast_to(wq.scale, art.layer(name).weight_scale.shape))
        for name, aq in qn.act_quant.items():
            assert art.layer(name).output.scale == float(np.exp(aq.log_scale))
    x_test = rng.normal(0.5, 1.0, size=(200, 6, 5, 2))
    _check_agreement(qn, art, x_test, f"tiny {'LSQ' if lsq else 'EMA'}")


def test_float_path_sees_the_integer_accumulator(rng):
    """In the fake-quant forward, the float pre-activation of a conv / FC layer is the
    real value of the integer path's ``acc + b_q`` (TFLite accumulator plus int32 bias):
    ``z == s_in * s_w[c] * (acc + b_q)`` -- the EMA observers and the STE masks see
    what the integer network computes.  Bound: float64 GEMM rounding, relative
    ``K * 2^-52`` of ``sum |terms|`` (< 1e-9 accumulator units here), far below the 0.5
    of a wrong bias rounding."""
    net = tiny_network(rng)
    x = rng.normal(0.5, 1.0, size=(8, 6, 5, 2))
    qn = qat.QATNetwork(net, qat.initial_ranges(net, x))
    qn.forward(x)
    worst = 0.0
    for j, (spec, ql) in enumerate(zip(net.layers, qn.last_qlayers)):
        if spec.op not in ("conv2d", "fully_connected"):
            continue
        x_int = qn.last_int[j - 1] if j else quantize(x, qn.input_quant.qparams())
        # TFLite's accumulator: sum_k w * (x - zp_in); padded taps hold zp_in -> 0
        rows = inference.gemm_rows(ql, x_int).astype(np.int64) - ql.input.zero_point
        acc = rows @ ql.w2d.astype(np.int64).T + ql.bias.astype(np.int64)
        z = qn.model[spec.name]._cache["z"].reshape(acc.shape)
        units = z / (ql.input.scale * ql.weight_scale)
        worst = max(worst, float(np.max(np.abs(units - acc))))
    print(f"max |z / (s_in s_w) - (acc + b_q)| = {worst:.2e} accumulator units")
    assert worst < 1e-6, worst


def test_qat_config_validation():
    for kw, msg in (({"epochs": 0}, "epochs"), ({"freeze_epochs": 7}, "freeze_epochs"),
                    ({"lr": 0.0}, "lr"), ({"ema_constant": 1.5}, "ema_constant"),
                    ({"mode": "fast"}, "mode")):
        with pytest.raises(ValueError, match=msg):
            qat.QATConfig(**kw)
    assert dataclasses.asdict(qat.QATConfig())["mode"] == "integer"
