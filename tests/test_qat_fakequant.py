"""Fake quantization (pymodel.quantization.fakequant): the golden quantizer in the forward pass, the
straight-through estimator at / inside / outside the clip boundary, the LSQ gradient."""

from __future__ import annotations

import numpy as np
import pytest

from pymodel.quantization.fakequant import (ActivationQuantizer, WeightFakeQuant, fake_quantize,
                               lsq_scale_grad, ste_mask, unclamped_integer)
from pymodel.arithmetic.qparams import QuantParams, compute_qparams, dequantize, quantize


def qp_tensor(scale: float, zp: int, bits: int = 8, symmetric: bool = False) -> QuantParams:
    return QuantParams(np.asarray(scale, np.float64), np.asarray(zp, np.int32), bits, symmetric)


# A power-of-two scale makes every s * (k + 0.5) an exact float64 tie.
CASES = [qp_tensor(0.125, -3), qp_tensor(0.25, 0, 4, True), qp_tensor(0.5, 7, 4, False),
         qp_tensor(2.0 ** -6, -128)]


@pytest.mark.parametrize("qp", CASES, ids=lambda q: f"b{q.bits}{'s' if q.symmetric else 'a'}"
                                                    f"zp{int(q.zero_point)}")
def test_ste_at_inside_and_outside_the_clip_boundary(qp):
    s, zp, lo, hi = float(qp.scale), int(qp.zero_point), qp.qmin, qp.qmax
    below = np.nextafter
    points = {
        # value: (expected integer, expected STE gradient)
        s * (hi - zp): (hi, 1),                          # exactly at the upper boundary
        s * (lo - zp): (lo, 1),                          # exactly at the lower boundary
        s * ((lo + hi) // 2 - zp) + 0.3 * s: ((lo + hi) // 2, 1),   # inside
        s * (hi - zp + 0.5): (hi, 0),                    # tie beyond the top: rounds away
        float(below(s * (hi - zp + 0.5), -np.inf)): (hi, 1),        # just inside that tie
        s * (lo - zp - 0.5): (lo, 0),                    # tie below the bottom (zp >= lo)
        s * (hi - zp + 40): (hi, 0),                     # far outside
        s * (lo - zp - 40): (lo, 0),
    }
    x = np.array(list(points))
    want_q = np.array([v[0] for v in points.values()])
    want_g = np.array([v[1] for v in points.values()], np.float64)
    x_hat, q, mask = fake_quantize(x, qp)
    assert np.array_equal(q.astype(np.int64), want_q), (x, q, want_q)
    assert np.array_equal(x_hat, dequantize(quantize(x, qp), qp))        # the golden pair
    assert np.array_equal(np.clip(unclamped_integer(x, qp), lo, hi), q.astype(np.float64))
    assert np.array_equal(mask.astype(np.float64), want_g), (x, mask, want_g)
    # The backward passes of both hook kinds apply exactly that mask.
    dy = np.arange(1.0, x.size + 1.0)
    aq = ActivationQuantizer("t", qp.bits, qp.symmetric, s * (lo - zp), s * (hi - zp))
    aq.remember(x, q, qp, mask)
    assert np.array_equal(aq.backward(dy), dy * want_g)
    print(f"scale {s}, zp {zp}, [{lo}, {hi}]: x {x.tolist()} -> q {q.tolist()}, "
          f"grad {want_g.tolist()}")


def test_weight_fake_quant_is_ptq_weight_quantization(rng):
    from pymodel.quantization.ptq import quantize_weights
    from pymodel.graph.network import WeightScheme
    w = rng.normal(0, 0.3, size=(5, 3, 3, 4)) * rng.uniform(0.01, 2, size=(5, 1, 1, 1))
    for bits, gran in ((8, "per_channel"), (4, "per_tensor"), (3, "per_channel")):
        wq = WeightFakeQuant(bits, gran == "per_channel", 0)
        w_hat = wq.forward(w, train=True)
        ref_q, ref_qp = quantize_weights(w, WeightScheme(bits, gran), 0)
        assert np.array_equal(wq.q.astype(np.int64), ref_q.astype(np.int64))
        assert np.array_equal(w_hat, dequantize(ref_q, ref_qp))
        # min/max scales: every weight lies inside the clip range, the STE passes all
        assert np.array_equal(wq.backward(np.ones_like(w)), np.ones_like(w))


def test_lsq_gradient_matches_the_surrogate_derivative(rng):
    """LSQ's d x_hat / d s is the exact derivative of the surrogate in which the rounding
    residual ``round(x/s) - x/s`` is frozen: ``s * (clip(x/s + r + zp) - zp)``."""
    c = 6
    x = rng.normal(0.0, 1.0, size=(4, c)) * np.linspace(0.2, 3.0, c)
    qp = compute_qparams(-np.full(c, 1.5), np.full(c, 1.5), 4, symmetric=True, axis=1)
    s0 = qp.scale.copy()
    # An element whose integer is exactly qmin or qmax sits on the surrogate's kink
    # (LSQ takes the inside branch there): move such elements a step inside.
    u = unclamped_integer(x, qp)
    edge = (u == qp.qmin) | (u == qp.qmax)
    x = np.where(edge, x - np.sign(x) * np.broadcast_to(s0, x.shape), x)
    assert not np.any(np.isin(unclamped_integer(x, qp), (qp.qmin, qp.qmax)))
    r = unclamped_integer(x, qp) - x / s0                  # frozen rounding residual
    dy = rng.normal(size=x.shape)

    def surrogate(s: np.ndarray) -> float:
        return float(np.sum(dy * s * np.clip(x / s + r, qp.qmin, qp.qmax)))

    x_hat, q, mask = fake_quantize(x, qp)
    assert np.allclose(surrogate(s0), np.sum(dy * x_hat), rtol=0, atol=1e-12)
    g = lsq_scale_grad(x, q, qp, dy, mask)
    num = np.zeros(c)
    for i in range(c):
        eps = 1e-7 * s0[i]
        up, dn = s0.copy(), s0.copy()
        up[i] += eps
        dn[i] -= eps
        num[i] = (surrogate(up) - surrogate(dn)) / (2 * eps)
    # The surrogate is linear in s between clip kinks (none within +-eps of a random
    # point), so central differences are exact up to cancellation ~ 1e-16 / 1e-7.
    print("LSQ grad", g, "numerical", num)
    assert np.max(np.abs(g - num)) < 1e-6 * max(1.0, float(np.max(np.abs(num))))
    assert np.sum(~mask) > 0 and np.sum(mask) > 0            # both branches exercised


def test_activation_quantizer_ema_and_freeze():
    aq = ActivationQuantizer("t", 8, False, 0.0, 4.0, ema_constant=0.25)
    aq.observe(np.array([-1.0, 8.0]))
    assert (aq.rmin, aq.rmax) == (-0.25, 5.0)                # 0.75 * r + 0.25 * batch
    qp = aq.qparams()
    ref = compute_qparams(-0.25, 5.0, 8, False)
    assert float(qp.scale) == float(ref.scale) and int(qp.zero_point) == int(ref.zero_point)
    aq.frozen = True
    aq.observe(np.array([-100.0, 100.0]))
    assert (aq.rmin, aq.rmax) == (-0.25, 5.0) and aq.updates == 1
    with pytest.raises(ValueError, match="ema_constant"):
        ActivationQuantizer("t", 8, False, 0.0, 1.0, ema_constant=0.0)


def test_ste_mask_matches_quantize_clamp(rng):
    qp = compute_qparams(-1.0, 3.0, 6, False)
    x = rng.uniform(-3, 6, size=10_000)
    m = ste_mask(x, qp)
    u = unclamped_integer(x, qp)
    q = quantize(x, qp).astype(np.float64)
    assert np.array_equal(m, u == q)            # the gradient passes iff the clamp is idle


def test_lsq_hooks_log_scale_gradient_and_clipping(rng):
    """Under LSQ the trainable parameter is ``t = ln s``: the hooks' gradient is
    ``s * dL/ds`` -- checked against central differences of the frozen-residual
    surrogate in ``t`` -- and the STE mask of the weights is zero where the learned
    scale clips them."""
    w = rng.normal(0.0, 1.0, size=(3, 10))
    wq = WeightFakeQuant(4, True, 0, lsq=True)
    wq.forward(w, train=True)                              # initializes ln s from min/max
    wq.log_scale = wq.log_scale - 0.5                       # a smaller scale: weights clip
    qp = wq.qparams(w)
    u = unclamped_integer(w, qp)
    # an integer exactly at qmin / qmax is a kink of the surrogate: push such values
    # three steps further out (they then clip)
    w = np.where((u == qp.qmin) | (u == qp.qmax), w + 3 * np.sign(w) * qp.scale[:, None], w)
    assert not np.any(np.isin(unclamped_integer(w, qp), (qp.qmin, qp.qmax)))
    wq.forward(w, train=True)
    dy = rng.normal(size=w.shape)
    dw = wq.backward(dy)
    _, _, mask = fake_quantize(w, wq.qp)
    assert np.sum(~mask) > 0 and np.array_equal(dw, dy * mask)
    t0 = wq.log_scale.copy()
    r = unclamped_integer(w, wq.qp) - w / np.exp(t0)[:, None]
    from pymodel.quantization.fakequant import lsq_grad_scale
    g = lsq_grad_scale(w.shape[1], wq.qp.qmax)

    def surrogate(t: np.ndarray) -> float:
        s = np.exp(t)[:, None]
        return float(np.sum(dy * s * np.clip(w / s + r, qp.qmin, qp.qmax)))

    num = np.zeros_like(t0)
    for i in range(t0.size):
        up, dn = t0.copy(), t0.copy()
        up[i] += 1e-7
        dn[i] -= 1e-7
        num[i] = (surrogate(up) - surrogate(dn)) / 2e-7
    print("d/d ln s: hooks", wq.log_scale_grad / g, "numerical", num)
    assert np.max(np.abs(wq.log_scale_grad / g - num)) < 1e-6 * max(1.0, np.abs(num).max())

    aq = ActivationQuantizer("a", 8, False, -1.0, 2.0, lsq=True)
    x = rng.uniform(-1.5, 3.0, size=(4, 25))
    qpa = aq.qparams()
    ua = unclamped_integer(x, qpa)
    x = np.where((ua == qpa.qmin) | (ua == qpa.qmax), x + 3 * np.sign(x) * float(qpa.scale), x)
    assert not np.any(np.isin(unclamped_integer(x, qpa), (qpa.qmin, qpa.qmax)))
    xh, q, m = fake_quantize(x, qpa)
    aq.remember(x, q, qpa, m)
    dya = rng.normal(size=x.shape)
    aq.backward(dya)
    ta = float(aq.log_scale)
    zp = int(qpa.zero_point)
    ra = unclamped_integer(x, qpa) - zp - x / np.exp(ta)

    def surrogate_a(t: float) -> float:
        s = np.exp(t)
        return float(np.sum(dya * s * np.clip(x / s + ra, qpa.qmin - zp, qpa.qmax - zp)))

    numa = (surrogate_a(ta + 1e-7) - surrogate_a(ta - 1e-7)) / 2e-7
    ga = lsq_grad_scale(25, qpa.qmax)
    assert abs(float(aq.log_scale_grad) / ga - numa) < 1e-6 * max(1.0, abs(numa)), \
        (float(aq.log_scale_grad) / ga, numa)
