"""Checks of a network run before the simulator starts (``make sim``, ``python -m tb.run``).

Everything here runs on the host, in a second or less, and fails with one
:class:`ValueError` line that names the ``make sim`` variable (and the ``tb.run``
option) to change -- never a traceback from inside cocotb after the build:

* :func:`engine_parameters`: ``ROWS``, ``COLS``, ``A_DEPTH``, ``W_DEPTH``,
  ``N_TILES_MAX`` are integers the RTL accepts;
* :func:`check_fits`: every conv / fully-connected layer of the artifact fits that
  engine (a layer wider than the engine runs as groups of output channels, so the limits
  are on ``K``, the taps of one output channel);
* :func:`load_data`: ``DATA=file.npy|.npz`` holds finite float images of the artifact's
  input shape;
* :func:`float_network`: the artifact's own float network (``meta.network`` beside the
  artifact), for the report's float column -- or the reason there is none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pymodel.graph.artifact import QuantizedNetwork
from pymodel.validate import NPZ_READ_ERRORS

#: engine parameter -> (make variable, tb.run option, lower bound)
ENGINE_KNOBS = {"ROWS": ("ROWS", "--rows", 1), "COLS": ("COLS", "--cols", 1),
                "A_DEPTH": ("A_DEPTH", "--a-depth", 1), "W_DEPTH": ("W_DEPTH", "--w-depth", 1),
                "N_TILES_MAX": ("N_TILES_MAX", "--n-tiles-max", 1)}
ENGINE_OPS = ("conv2d", "fully_connected")
K_MAX = 0xFFFF                                       # the engine's 16-bit K register


def _knob(name: str) -> str:
    make, opt, _ = ENGINE_KNOBS[name]
    return f"{make} / {opt}"


def engine_parameters(defaults: Mapping[str, int],
                      overrides: Mapping[str, Any] | None = None) -> dict[str, int]:
    """``defaults`` with ``overrides`` applied (``None`` values ignored), each checked.

    Args:
        defaults: the engine's default parameters (``tb.test_qlayer_engine``).
        overrides: e.g. ``{"ROWS": 4}`` from ``make sim ROWS=4``; strings are parsed.

    Returns:
        ``{parameter: int}`` in the order of ``defaults``.
    """
    params = dict(defaults)
    for name, value in (overrides or {}).items():
        if value is None or value == "":
            continue
        if name not in ENGINE_KNOBS:
            raise ValueError(f"engine parameter {name!r} is not one of "
                             f"{', '.join(ENGINE_KNOBS)}")
        lo = ENGINE_KNOBS[name][2]
        try:
            v = int(str(value), 10)
        except ValueError:
            raise ValueError(f"{_knob(name)}: {value!r} is not an integer "
                             f"(allowed: an integer >= {lo})") from None
        if v < lo:
            raise ValueError(f"{_knob(name)}: {v} is not allowed (an integer >= {lo})")
        if v > 4096 and name in ("ROWS", "COLS", "N_TILES_MAX"):
            raise ValueError(f"{_knob(name)}: {v} is not allowed (at most 4096: a larger "
                             "array would not build in reasonable time)")
        params[name] = v
    return params


def check_fits(qnet: QuantizedNetwork, params: Mapping[str, int]) -> None:
    """Every engine layer of ``qnet`` fits the engine ``params``; ValueError naming the
    first layer that does not, and the parameter to raise.

    Limits (docs/engine.md): ``K <= 65535`` (configuration register) and ``K <= W_DEPTH``
    (one tile of ``COLS`` output channels holds ``K`` weight words); ``A_DEPTH`` and
    ``N_TILES_MAX`` only change how a layer is split (K chunks, channel groups), never
    whether it runs.  (Weights of at most 8 bits are the artifact format's own rule.)
    """
    w_depth = params["W_DEPTH"]
    for layer in qnet.layers:
        if layer.op not in ENGINE_OPS:
            continue                              # runs on the host
        k = int(layer.w2d.shape[1])
        what = f"layer {layer.name!r} ({layer.op}, K={k} taps per output channel)"
        if k > K_MAX:
            raise ValueError(f"{what} does not fit the engine: K must be <= {K_MAX} (the "
                             "16-bit K register); no engine parameter lifts this limit")
        if k > w_depth:
            raise ValueError(f"{what} does not fit the engine: one tile of output channels "
                             f"needs K={k} weight words but W_DEPTH={w_depth}; "
                             f"raise W_DEPTH to at least {k} (make sim W_DEPTH={k}, or "
                             f"--w-depth {k})")


@dataclass
class Data:
    """Images for a network run.

    Attributes:
        x: float64 ``[N, *input_shape]``.
        y: int64 ``[N]`` labels, or ``None``.
        source: what the images are, for the report (``digits test split``, a path).
    """

    x: np.ndarray
    y: np.ndarray | None
    source: str


def load_data(path: str | Path | None, qnet: QuantizedNetwork) -> Data:
    """The images of a run: ``path`` (``.npy``: ``x``; ``.npz``: ``x`` and optional
    ``y``), or the digits test split when ``path`` is ``None``.  The images must be
    finite floats of the artifact's input shape (``[N, *input_shape]``; one image of
    exactly ``input_shape`` is taken as ``N = 1``)."""
    from pymodel import datasets

    shape = tuple(qnet.input_shape)
    if path is None:
        test = datasets.digits("test")
        x, y, source = test.x, test.y, "digits test split"
    else:
        p = Path(path)
        source = str(p)
        if p.suffix not in (".npy", ".npz"):
            raise ValueError(f"DATA / --data: {p} is neither .npy nor .npz")
        if not p.is_file():
            raise ValueError(f"DATA / --data: {p}: file not found")
        y = None
        try:
            if p.suffix == ".npy":
                x = np.load(p, allow_pickle=False)
            else:
                with np.load(p, allow_pickle=False) as z:
                    if "x" not in z.files:
                        raise ValueError(f"DATA / --data: {p} has no array 'x' (holds "
                                         f"{', '.join(z.files) or 'nothing'})")
                    x = z["x"]
                    y = z["y"] if "y" in z.files else None
        except NPZ_READ_ERRORS as exc:
            if isinstance(exc, ValueError) and str(exc).startswith("DATA"):
                raise
            raise ValueError(f"DATA / --data: {p} is not a readable {p.suffix} "
                             f"({type(exc).__name__}: {exc})") from None
        x = np.asarray(x)
        if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.floating)
                                       or np.issubdtype(x.dtype, np.integer)):
            raise ValueError(f"DATA / --data: {p}: x has dtype {x.dtype}; expected real "
                             "numbers (float images, as the float network takes them)")
        if tuple(x.shape) == shape:
            x = x[None]
        x = x.astype(np.float64)
        if y is not None:
            y = np.asarray(y)
            if not np.issubdtype(y.dtype, np.integer) or y.shape != (x.shape[0],):
                raise ValueError(f"DATA / --data: {p}: y has shape {y.shape} and dtype "
                                 f"{y.dtype}; expected integer labels of shape "
                                 f"({x.shape[0]},)")
            y = y.astype(np.int64)
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        hint = (" (give the artifact's own images: make sim DATA=file.npy|.npz)"
                if path is None else "")
        raise ValueError(f"DATA / --data: {source} holds an array of shape "
                         f"{tuple(x.shape)}; artifact {qnet.name!r} takes images of shape "
                         f"{shape}, so the data must be [N, {', '.join(map(str, shape))}]"
                         f"{hint}")
    if x.shape[0] == 0:
        raise ValueError(f"DATA / --data: {source} holds no images")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"DATA / --data: {source} contains NaN or Inf")
    return Data(x, y, source)


def float_network(qnet: QuantizedNetwork, artifact: str | Path) -> tuple[Any, str]:
    """The artifact's own float network, for the report's float column.

    The artifact's ``meta.network`` names the float network YAML it was quantized from
    (relative to the artifact).  Returns ``(network, description)``, or ``(None,
    reason)`` when there is none to load.  A QAT artifact's float network is the one it
    was fine-tuned from: its predictions are those of the float network before QAT
    (the description says so).
    """
    from pymodel import atomicio
    from pymodel.graph.network import load_network

    meta = qnet.meta if isinstance(qnet.meta, Mapping) else {}
    name = meta.get("network")
    if not isinstance(name, str) or not name:
        return None, f"artifact {qnet.name!r} names no float network (meta.network)"
    path = Path(artifact).parent / name
    if not path.is_file():
        return None, f"its float network {name} is not beside the artifact"
    try:
        net = load_network(path)
    except ValueError as exc:
        return None, f"its float network {name} does not load ({exc})"
    shown = f"{name}"
    sha = meta.get("float_weights_sha256")
    if sha and sha != atomicio.arrays_digest(net.params):
        if "qat" in meta:
            shown += " (before QAT fine-tuning)"
        else:
            shown += " (its weights differ from the ones the artifact was quantized from)"
    return net, shown
