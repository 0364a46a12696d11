"""Prepared layers of a loaded artifact, built on first use and kept with the layer.

:func:`prepared_layer` turns a weight layer of a
:class:`pymodel.graph.artifact.QuantizedNetwork` into its
:class:`pymodel.ops.prepared.PreparedLayer` once and returns the same object for every
later call with the same layer object (the cache holds the layer weakly: a layer that is
garbage-collected drops its entry).  Layers are frozen dataclasses; the prepared copy
assumes their arrays are not modified in place afterwards.
"""

from __future__ import annotations

import weakref
from typing import Any

from pymodel.ops.prepared import (PreparedConv2d, PreparedDepthwise, PreparedFullyConnected,
                                  PreparedLayer)

_CACHE: dict[int, tuple[weakref.ref, PreparedLayer]] = {}


def build(layer: Any) -> PreparedLayer:
    """A new prepared layer for a ``conv2d`` / ``depthwise_conv2d`` / ``fully_connected``
    :class:`pymodel.graph.artifact.QLayer`."""
    if not layer.has_weights:
        raise ValueError(f"layer {layer.name!r}: {layer.op} has no weights to prepare")
    zp, rq = layer.input.zero_point, layer.requant()
    if layer.op == "conv2d":
        return PreparedConv2d(layer.weight, zp, rq, layer.stride, layer.padding, layer.name)
    if layer.op == "depthwise_conv2d":
        return PreparedDepthwise(layer.weight, zp, rq, int(layer.input_shape[-1]),
                                 layer.stride, layer.padding, layer.name)
    if layer.op == "fully_connected":
        return PreparedFullyConnected(layer.weight, zp, rq, layer.name)
    raise ValueError(f"layer {layer.name!r}: {layer.op} has no weights to prepare")


def prepared_layer(layer: Any) -> PreparedLayer:
    """The cached prepared form of ``layer`` (built on the first call)."""
    key = id(layer)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is layer:
        return hit[1]
    prep = build(layer)
    _CACHE[key] = (weakref.ref(layer, lambda _ref, k=key: _CACHE.pop(k, None)), prep)
    return prep
