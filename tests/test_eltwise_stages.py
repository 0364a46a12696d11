"""The element-wise unit's stage functions (pymodel.ops.eltwise_stages) compose to
TFLite's ADD / SUB / MUL (pymodel.ops.elementwise), on parameters from the kernels'
Prepare (random scales, zero points, activations) and on every int8 operand pair."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymodel.arithmetic.fixedpoint import multiply_by_quantized_multiplier
from pymodel.ops import elementwise as E
from pymodel.ops import eltwise_stages as S

scales = st.floats(1e-3, 2.0, allow_nan=False, allow_infinity=False).map(np.float32)
zps = st.integers(-128, 127)
acts = st.sampled_from(["none", "relu", "relu6", "relu_n1_to_1"])
ALL = np.array(np.meshgrid(np.arange(-128, 128), np.arange(-128, 128))).reshape(2, -1).astype(np.int8)


@settings(max_examples=25, deadline=None)
@given(s1=scales, s2=scales, so=scales, zp1=zps, zp2=zps, zpo=zps, act=acts)
def test_stages_equal_tflite_ops_on_every_operand_pair(s1, s2, so, zp1, zp2, zpo, act) -> None:
    x1, x2 = ALL
    for op in S.OPS:
        prep = {"add": E.prepare_add, "sub": E.prepare_sub, "mul": E.prepare_mul}[op]
        try:
            p = prep(s1, zp1, s2, zp2, so, zpo, act)
        except ValueError:
            continue                # a scale combination TFLite's Prepare refuses
        ref = getattr(E, op)(x1, x2, p)
        assert np.array_equal(S.eltwise_engine(x1, x2, op, p), ref), (op, p)


def test_refuses_single_rounding_and_unknown_ops() -> None:
    p = E.prepare_add(0.1, 0, 0.1, 0, 0.2, 0, rounding="single")
    with pytest.raises(ValueError, match="params.rounding"):
        S.eltwise_engine(ALL[0], ALL[1], "add", p)
    with pytest.raises(ValueError, match="op: 'div'"):
        S.eltwise_engine(ALL[0], ALL[1], "div", p)


V = np.arange(-255, 256, dtype=np.int64)


@settings(max_examples=60, deadline=None)
@given(m0=st.one_of(st.integers(-(1 << 31), (1 << 31) - 1),
                    st.sampled_from([-(1 << 31), (1 << 31) - 1, 1 << 30, -1, 0, 1])),
       shift=st.integers(-31, 0))
def test_rescale_equals_multiply_by_quantized_multiplier(m0, shift) -> None:
    """Stages 3-6 (the product formed as (v * m0) * 2^20, no saturation) equal
    MultiplyByQuantizedMultiplier(v * 2^20, m0, shift) for every 9-bit offset value v and
    any int32 m0 -- INT32_MIN included (docs/arithmetic.md section 10)."""
    u = S.eltwise_left_shift(V)
    ref = np.asarray(multiply_by_quantized_multiplier(u, m0, shift), np.int64)
    assert np.array_equal(S.eltwise_rescale(u, m0, shift), ref)


def test_rescale_refuses_operands_it_does_not_implement() -> None:
    with pytest.raises(ValueError, match="u: not v"):
        S.eltwise_rescale(np.array([256 << 20]), 1 << 30, 0)
    with pytest.raises(ValueError, match="u: not v"):
        S.eltwise_rescale(np.array([3]), 1 << 30, 0)
    with pytest.raises(ValueError, match="shift: 1"):
        S.eltwise_rescale(np.array([1 << 20]), 1 << 30, 1)
