"""Cross-layer equalization (CLE; Nagel et al., "Data-Free Quantization Through Weight
Equalization and Bias Correction", ICCV 2019).

Two consecutive weight layers ``L1 -> (pools, flatten) -> L2`` whose connecting
activation is positively homogeneous (``relu`` or ``none``: ``f(x / s) = f(x) / s`` for
``s > 0``) compute the same function after

* output channel ``i`` of ``L1`` (weights and bias) is divided by ``s_i > 0``, and
* every weight of ``L2`` that reads channel ``i`` is multiplied by ``s_i``.

Max / average pooling commute with a positive per-channel scale, ``same`` padding pads
with 0 (unchanged by scaling), and a flatten of ``[H, W, C]`` puts channel ``i`` in the
columns ``j`` with ``j % C == i`` (NHWC, channel fastest).  With ``r1_i`` the range
``max |W1|`` of output channel ``i`` of ``L1`` and ``r2_i`` the range of the weights of
``L2`` reading channel ``i``, ``s_i = sqrt(r1_i / r2_i)`` makes both ``sqrt(r1_i *
r2_i)``: the per-channel ranges balance, so per-tensor weight quantization of either
layer wastes less of its grid on small channels.  For a chain of layers the pairs are
equalized in turn, sweep after sweep, until a sweep's largest ``|ln s_i|`` is below the
tolerance (the paper's iterative procedure).  ``relu6`` is not homogeneous: such pairs
are skipped (and reported).  In a graph network a pair is equalized only where the path
between them is a chain (every tensor on it read by the next layer alone): a scaled
tensor that also feeds an ``add`` / ``concat`` or another branch would change them.

The float network's output is unchanged up to float64 rounding (``tests/test_cle.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from pymodel.graph.network import LayerSpec, Network

HOMOGENEOUS = ("relu", "none")
PASS_THROUGH = ("max_pool2d", "avg_pool2d", "flatten")
TRANSFORM = "cross_layer_equalization"


@dataclass(frozen=True)
class Pair:
    """Two weight layers equalized together.

    Attributes:
        first, second: layer names.
        channels: channels of the connecting tensor (``first``'s outputs).
        flattened: the tensor goes through a flatten between them (``second`` is a
            fully connected layer reading ``[H*W*C]`` columns).
    """

    first: str
    second: str
    channels: int
    flattened: bool


@dataclass
class Result:
    """What :func:`equalize` did.

    Attributes:
        pairs: the equalized pairs.
        skipped: ``(first, second, reason)`` for adjacent weight layers not equalized.
        scales: ``{"first->second": s [C]}``, the product of every sweep's scales.
        sweeps: sweeps run; converged: the last sweep's largest ``|ln s|`` was below the
            tolerance.
    """

    pairs: list[Pair] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    scales: dict[str, np.ndarray] = field(default_factory=dict)
    sweeps: int = 0
    converged: bool = False
    last_change: float = 0.0

    def summary(self) -> dict:
        """Plain data for an artifact's ``meta``."""
        return {"pairs": [f"{p.first}->{p.second}" for p in self.pairs],
                "skipped": [f"{a}->{b}: {why}" for a, b, why in self.skipped],
                "sweeps": self.sweeps, "converged": bool(self.converged)}


def find_pairs(network: Network) -> tuple[list[Pair], list[tuple[str, str, str]]]:
    """Consecutive weight-layer pairs that can be equalized, and those that cannot."""
    pairs: list[Pair] = []
    skipped: list[tuple[str, str, str]] = []
    layers = list(network.layers)
    readers = network.readers()
    for i, a in enumerate(layers):
        if not a.has_weights:
            continue
        j = i + 1
        flattened = False
        between_ok = True
        branch = False           # graphs: each tensor from a to b read only by the next layer
        while j < len(layers) and not layers[j].has_weights:
            if layers[j].op not in PASS_THROUGH:
                between_ok = False
            flattened |= layers[j].op == "flatten"
            j += 1
        if j >= len(layers):
            continue
        b = layers[j]
        for k in range(i, j):
            branch |= (readers[layers[k].name] != [layers[k + 1].name]
                       or network.inputs_of(k + 1) != (layers[k].name,))
        if branch:
            skipped.append((a.name, b.name, "not a chain between them: a tensor between "
                                            "them is read by another layer (a branch)"))
        elif a.activation not in HOMOGENEOUS:
            skipped.append((a.name, b.name, f"activation {a.activation!r} of {a.name!r} is "
                                            "not positively homogeneous"))
        elif not between_ok:
            skipped.append((a.name, b.name, "an op between them does not commute with a "
                                            "per-channel scale"))
        else:
            pairs.append(Pair(a.name, b.name, int(a.out_channels), flattened))  # type: ignore[arg-type]
    return pairs, skipped


def _first_view(spec: LayerSpec, w: np.ndarray) -> np.ndarray:
    """``[C, ...]`` view of ``spec``'s weights, one row per output channel."""
    if spec.op == "depthwise_conv2d":
        return np.moveaxis(w, 3, 0)
    return w


def _second_slices(spec: LayerSpec, w: np.ndarray, channels: int, flattened: bool
                   ) -> np.ndarray:
    """``[C, ...]`` view of the weights of ``spec`` grouped by the input channel they read."""
    if spec.op == "conv2d":
        return np.moveaxis(w, 3, 0)                                    # [Cin, out, kh, kw]
    if spec.op == "depthwise_conv2d":
        kh, kw, cm = w.shape[1:]
        m = cm // channels
        return np.moveaxis(w.reshape(kh, kw, channels, m), 2, 0)       # [C, kh, kw, m]
    # fully connected [out, in]
    if flattened:
        out, n = w.shape
        return np.moveaxis(w.reshape(out, n // channels, channels), 2, 0)  # [C, out, HW]
    return w.T                                                         # [C, out]


def _channel_range(v: np.ndarray) -> np.ndarray:
    return np.abs(v.reshape(v.shape[0], -1)).max(axis=1)


def equalize(network: Network, iterations: int | None = None,
             tolerance: float | None = None) -> tuple[Network, Result]:
    """Equalize every eligible pair of ``network`` (a float network with weights).

    Args:
        network: the float network.
        iterations: maximum sweeps (default: ``network.equalization.iterations``).
        tolerance: stop when a sweep's largest ``|ln s|`` is below it (default:
            ``network.equalization.tolerance``).

    Returns:
        ``(equalized network, result)``; the network records the transform in
        ``transforms``.  Channels where either range is 0 keep ``s = 1``.
    """
    if not network.params:
        raise ValueError(f"network {network.name!r}: has no weights loaded")
    iters = network.equalization.iterations if iterations is None else iterations
    tol = network.equalization.tolerance if tolerance is None else tolerance
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iterations: {iters!r} must be a positive integer")
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"tolerance: {tol!r} must be a positive finite number")
    params: dict[str, np.ndarray] = {k: np.array(v, np.float64)
                                     for k, v in network.params.items()}
    pairs, skipped = find_pairs(network)
    res = Result(pairs=pairs, skipped=skipped,
                 scales={f"{p.first}->{p.second}": np.ones(p.channels) for p in pairs})
    if not pairs:
        res.converged = True
        return network.with_params(params, TRANSFORM), res
    for sweep in range(iters):
        worst = 0.0
        for p in pairs:
            a, b = network.layer(p.first), network.layer(p.second)
            w1 = _first_view(a, params[f"{a.name}.weight"])            # views: edits land
            w2 = _second_slices(b, params[f"{b.name}.weight"], p.channels, p.flattened)
            assert np.shares_memory(w1, params[f"{a.name}.weight"])
            assert np.shares_memory(w2, params[f"{b.name}.weight"])
            r1, r2 = _channel_range(w1), _channel_range(w2)
            s = np.ones(p.channels)
            ok = (r1 > 0) & (r2 > 0)
            s[ok] = np.sqrt(r1[ok] / r2[ok])
            shape1 = (-1,) + (1,) * (w1.ndim - 1)
            shape2 = (-1,) + (1,) * (w2.ndim - 1)
            w1 /= s.reshape(shape1)
            params[f"{a.name}.bias"] /= s
            w2 *= s.reshape(shape2)
            res.scales[f"{p.first}->{p.second}"] *= s
            worst = max(worst, float(np.max(np.abs(np.log(s)))))
        res.sweeps = sweep + 1
        res.last_change = worst
        if worst < tol:
            res.converged = True
            break
    return network.with_params(params, TRANSFORM), res


def ranges(network: Network, params: Mapping[str, np.ndarray] | None = None
           ) -> dict[str, np.ndarray]:
    """``max |w|`` per output channel of every weight layer (for reports and tests)."""
    p = network.params if params is None else params
    return {s.name: _channel_range(_first_view(s, np.asarray(p[f"{s.name}.weight"])))
            for s in network.weight_layers}
