"""The quantized-network artifact: what calibration produces and the RTL runner loads.

An artifact is a pair of files with one stem: ``NAME.yaml`` (self-describing: every
layer's op, shapes, stride, padding, zero points, scales, clamp and calibrated range,
and the name, dtype and shape of each of its arrays) and ``NAME.npz`` (the arrays).
The YAML records a SHA-256 of the arrays' content; :func:`load_artifact` refuses a
pair that does not match.  :func:`save_artifact` writes both files to temporary names
and moves them into place together (Ctrl-C held back), so an error or an interrupt
leaves the previous artifact untouched.

Per weight layer (``conv2d``, ``depthwise_conv2d``, ``fully_connected``) the arrays are

==================== ======= ========= ====================================================
array                dtype   shape     meaning
==================== ======= ========= ====================================================
``<l>.weight``       int8    TFLite    quantized weights; values in [-(2^(b-1)-1),
                                       2^(b-1)-1] for ``weights.bits = b`` (INT4: [-7, 7])
``<l>.bias``         int32   [C]       bias at scale ``s_in * s_w[c]`` (not folded)
``<l>.bias_folded``  int32   [C]       ``wrap32(bias - zp_in * sum_k w[c, k])``: what the
                                       hardware adds (``fold_input_zero_point``)
``<l>.m0``           int32   [C]       requantization multiplier, [2^30, 2^31) or 0
``<l>.shift``        int32   [C]       requantization shift, [-31, 30], positive = left
``<l>.weight_scale`` float64 [C]       real weight scale per output channel (equal
                                       entries when ``granularity: per_tensor``)
==================== ======= ========= ====================================================

The integer path needs only the int arrays and the integer fields of the YAML
(zero points, ``act_min`` / ``act_max``, stride, padding); scales and ranges are
recorded for dequantization and reports.  ``docs/calibration.md`` shows an example.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from pymodel import atomicio
from pymodel.ops.layers import ACTIVATIONS, RequantParams, fold_input_zero_point
from pymodel.graph.network import NAME_RE, OPS, POOL_OPS, WEIGHT_OPS
from pymodel.arithmetic.qparams import QuantParams, qrange
from pymodel.schema import Checker, load_yaml
from pymodel.validate import NPZ_READ_ERRORS

FORMAT = "qmac-quantized-network"
VERSION = 1


@dataclass(frozen=True)
class TensorQuant:
    """Quantization of one activation tensor (per tensor).

    Attributes:
        scale: real units per integer step (> 0).
        zero_point: the integer real 0.0 maps to.
        bits: 2..8 (held in int8).
        symmetric: narrow symmetric range (zero point 0).
        rmin, rmax: the calibrated real range the parameters were computed from.
        calibrator: label of the calibrator that chose the range (``None`` for tensors
            that inherit it, e.g. pooling outputs).
        threshold: the ``|x|`` threshold of a threshold calibrator, else ``None``.
    """

    scale: float
    zero_point: int
    bits: int = 8
    symmetric: bool = False
    rmin: float = 0.0
    rmax: float = 0.0
    calibrator: str | None = None
    threshold: float | None = None

    @property
    def qmin(self) -> int:
        return qrange(self.bits, self.symmetric)[0]

    @property
    def qmax(self) -> int:
        return qrange(self.bits, self.symmetric)[1]

    def qparams(self) -> QuantParams:
        return QuantParams(scale=np.asarray(self.scale, np.float64),
                           zero_point=np.asarray(self.zero_point, np.int32),
                           bits=self.bits, symmetric=self.symmetric)

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scale": float(self.scale), "zero_point": int(self.zero_point),
                               "bits": int(self.bits), "symmetric": bool(self.symmetric),
                               "range": [float(self.rmin), float(self.rmax)]}
        if self.calibrator is not None:
            out["calibrator"] = self.calibrator
        if self.threshold is not None:
            out["threshold"] = float(self.threshold)
        return out


@dataclass(frozen=True)
class QLayer:
    """One quantized layer, everything needed to run it.

    Attributes:
        name, op: layer name and op (``conv2d``, ``depthwise_conv2d``,
            ``fully_connected``, ``max_pool2d``, ``avg_pool2d``, ``flatten``).
        input_shape, output_shape: per-image shapes (``(H, W, C)`` or ``(F,)``).
        input, output: activation quantization (pools / flatten: output == input).
        act_min, act_max: output clamp (int8); the fused activation folded in.
        activation: fused activation name (informative; the clamp implements it).
        kernel: ``(kh, kw)`` of a conv, or the pool window; ``stride``: ``(sh, sw)``;
            padding: ``((top, bottom), (left, right))``, explicit.
        weight: int8 weights (TFLite layout), ``None`` for weightless ops.
        weight_bits, weight_granularity: weight scheme.
        weight_scale: float64 ``[C]``.
        bias, bias_folded, m0, shift: int32 ``[C]``.
        depth_multiplier: depthwise only.
        macs: multiply-accumulates per image.
    """

    name: str
    op: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input: TensorQuant
    output: TensorQuant
    act_min: int
    act_max: int
    activation: str = "none"
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[tuple[int, int], tuple[int, int]] | None = None
    weight: np.ndarray | None = None
    weight_bits: int | None = None
    weight_granularity: str | None = None
    weight_scale: np.ndarray | None = None
    bias: np.ndarray | None = None
    bias_folded: np.ndarray | None = None
    m0: np.ndarray | None = None
    shift: np.ndarray | None = None
    depth_multiplier: int | None = None
    macs: int = 0

    @property
    def has_weights(self) -> bool:
        return self.op in WEIGHT_OPS

    def requant(self) -> RequantParams:
        """The layer's :class:`pymodel.ops.layers.RequantParams` (weight layers only)."""
        if not self.has_weights:
            raise ValueError(f"layer {self.name!r}: {self.op} has no requantization")
        return RequantParams(bias=self.bias, m0=self.m0, shift=self.shift,
                             out_zero_point=self.output.zero_point, act_min=self.act_min,
                             act_max=self.act_max)

    @property
    def w2d(self) -> np.ndarray:
        """The weights as the GEMM's ``[C, K]`` matrix (conv: ``K = kh*kw*in`` in
        ``im2col`` column order; fully connected: the weight itself; depthwise:
        ``[C*m, kh*kw]``, one row of taps per output channel)."""
        if self.weight is None:
            raise ValueError(f"layer {self.name!r}: {self.op} has no weights")
        if self.op == "depthwise_conv2d":
            return self.weight.reshape(-1, self.weight.shape[3]).T
        return self.weight.reshape(self.weight.shape[0], -1)

    def arrays(self) -> dict[str, np.ndarray]:
        """This layer's arrays under their ``.npz`` names."""
        if not self.has_weights:
            return {}
        return {f"{self.name}.{k}": getattr(self, attr) for k, attr in _ARRAYS.items()}


_ARRAYS = {"weight": "weight", "bias": "bias", "bias_folded": "bias_folded", "m0": "m0",
           "shift": "shift", "weight_scale": "weight_scale"}
_ARRAY_DTYPES = {"weight": np.int8, "bias": np.int32, "bias_folded": np.int32,
                 "m0": np.int32, "shift": np.int32, "weight_scale": np.float64}


@dataclass(frozen=True)
class QuantizedNetwork:
    """A quantized network artifact in memory.

    Attributes:
        name: network name.
        input_shape: per-image input shape.
        input: quantization of the network input (float images are quantized with it).
        layers: the quantized layers in order.
        meta: provenance (source network, weights digest, calibration set, tool version).
        path: the YAML the artifact was loaded from / saved to, if any.
    """

    name: str
    input_shape: tuple[int, ...]
    input: TensorQuant
    layers: tuple[QLayer, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)
    path: str | None = None

    @property
    def output(self) -> TensorQuant:
        return self.layers[-1].output

    def layer(self, name: str) -> QLayer:
        for q in self.layers:
            if q.name == name:
                return q
        raise ValueError(f"layer: {name!r} is not a layer of {self.name!r}; layers: "
                         f"{', '.join(q.name for q in self.layers)}")

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for q in self.layers:
            out.update(q.arrays())
        return out

    def weight_bits_average(self) -> float:
        """Parameter-weighted average bits per weight (biases excluded)."""
        n = b = 0
        for q in self.layers:
            if q.weight is not None:
                n += q.weight.size
                b += q.weight.size * int(q.weight_bits)  # type: ignore[arg-type]
        return b / n if n else 0.0


# ----------------------------------------------------------------------------------------
# Save
# ----------------------------------------------------------------------------------------

def _layer_config(q: QLayer) -> dict[str, Any]:
    out: dict[str, Any] = {"name": q.name, "op": q.op,
                           "input_shape": list(q.input_shape),
                           "output_shape": list(q.output_shape)}
    if q.kernel is not None:
        out["pool" if q.op in POOL_OPS else "kernel"] = list(q.kernel)
        out["stride"] = list(q.stride)  # type: ignore[arg-type]
        out["padding"] = [list(q.padding[0]), list(q.padding[1])]  # type: ignore[index]
    if q.has_weights:
        out["activation"] = q.activation
        if q.op == "depthwise_conv2d":
            out["depth_multiplier"] = int(q.depth_multiplier)  # type: ignore[arg-type]
        out["weights"] = {"bits": int(q.weight_bits),  # type: ignore[arg-type]
                          "granularity": q.weight_granularity, "symmetric": True,
                          "zero_point": 0}
        out["tensors"] = {k: {"name": f"{q.name}.{k}",
                              "dtype": np.dtype(_ARRAY_DTYPES[k]).name,
                              "shape": list(getattr(q, attr).shape)}
                          for k, attr in _ARRAYS.items()}
        out["macs"] = int(q.macs)
    out["input"] = {"scale": float(q.input.scale), "zero_point": int(q.input.zero_point)}
    out["output"] = q.output.to_config()
    out["act_min"] = int(q.act_min)
    out["act_max"] = int(q.act_max)
    return out


def artifact_config(qnet: QuantizedNetwork, digest: str, npz_name: str) -> dict[str, Any]:
    """The YAML document of an artifact."""
    inp = qnet.input.to_config()
    inp = {"shape": list(qnet.input_shape), "dtype": "int8", **inp}
    return {
        "format": FORMAT, "version": VERSION, "name": qnet.name,
        "arrays": {"file": npz_name, "sha256": digest},
        "meta": dict(qnet.meta),
        "input": inp,
        "layers": [_layer_config(q) for q in qnet.layers],
    }


HEADER = """\
# qmac quantized-network artifact (written by pymodel; format described in
# docs/calibration.md).  Integer path: int8 input -> per layer the op with its int8
# weights, int32 bias / m0 / shift (arrays in the .npz named under `tensors`), input and
# output zero points and the act_min / act_max clamp.  Scales and ranges are for
# dequantization and reports only.
"""


def save_artifact(qnet: QuantizedNetwork, path: str | Path) -> Path:
    """Write ``qnet`` as ``<stem>.yaml`` + ``<stem>.npz`` as one unit
    (:func:`pymodel.atomicio.write_group`: both written to temporary files, then moved
    into place with Ctrl-C held back; on any error nothing changes).

    Args:
        qnet: the artifact.
        path: the YAML path (``.yaml``) or the stem; the ``.npz`` goes beside it.

    Returns:
        The YAML path.
    """
    p = Path(path)
    yml = p if p.suffix in (".yaml", ".yml") else p.with_name(p.name + ".yaml")
    npz = yml.with_suffix(".npz")
    arrays = qnet.arrays()
    digest = atomicio.arrays_digest(arrays)
    config = artifact_config(qnet, digest, npz.name)
    text = HEADER + yaml.safe_dump(config, sort_keys=False, default_flow_style=None, width=100)
    # Check the document before anything is written: it must load back.
    parse_artifact(yaml.safe_load(text), arrays, source=str(yml))
    atomicio.write_group({npz: atomicio.npz_bytes(arrays), yml: text.encode()})
    return yml


# ----------------------------------------------------------------------------------------
# Load and validate
# ----------------------------------------------------------------------------------------

TOP_KEYS = ("format", "version", "name", "arrays", "meta", "input", "layers")
TENSOR_KEYS = ("scale", "zero_point", "bits", "symmetric", "range", "calibrator", "threshold")


def _tensor_quant(ck: Checker, value: Any, path: str, extra: tuple[str, ...] = (),
                  full: bool = True) -> TensorQuant:
    keys = TENSOR_KEYS + extra if full else ("scale", "zero_point")
    m = ck.mapping(value, path, keys, ("scale", "zero_point") + (
        ("bits", "symmetric", "range") if full else ()))
    scale = ck.real(m["scale"], f"{path}.scale", positive=True)
    zp = ck.integer(m["zero_point"], f"{path}.zero_point", -128, 127)
    if not full:
        return TensorQuant(scale, zp)
    bits = ck.integer(m["bits"], f"{path}.bits", 2, 8)
    sym = ck.boolean(m["symmetric"], f"{path}.symmetric")
    qmin, qmax = qrange(bits, sym)
    if not qmin <= zp <= qmax:
        raise ck.error(f"{path}.zero_point", f"{zp} is outside [{qmin}, {qmax}] of a "
                                             f"{bits}-bit {'symmetric' if sym else 'asymmetric'} "
                                             "tensor")
    rng = m["range"]
    if not isinstance(rng, list) or len(rng) != 2:
        raise ck.error(f"{path}.range", f"expected [rmin, rmax]; got {rng!r}")
    rmin, rmax = (ck.real(v, f"{path}.range[{i}]") for i, v in enumerate(rng))
    cal = ck.string(m["calibrator"], f"{path}.calibrator") if "calibrator" in m else None
    thr = ck.real(m["threshold"], f"{path}.threshold") if "threshold" in m else None
    return TensorQuant(scale, zp, bits, sym, rmin, rmax, cal, thr)


LAYER_KEYS = ("name", "op", "input_shape", "output_shape", "kernel", "pool", "stride",
              "padding", "activation", "depth_multiplier", "weights", "tensors", "macs",
              "input", "output", "act_min", "act_max")


def _qlayer(ck: Checker, value: Any, path: str, arrays: Mapping[str, np.ndarray],
            used: set[str]) -> QLayer:
    if not isinstance(value, Mapping) or "op" not in value:
        raise ck.error(path, "expected a mapping with an 'op'")
    op = ck.string(value["op"], f"{path}.op", OPS)
    required = ["name", "op", "input_shape", "output_shape", "input", "output", "act_min",
                "act_max"]
    if op in WEIGHT_OPS:
        required += ["kernel"] if op != "fully_connected" else []
        required += ["stride", "padding"] if op != "fully_connected" else []
        required += ["activation", "weights", "tensors", "macs"]
    elif op in POOL_OPS:
        required += ["pool", "stride", "padding"]
    m = ck.mapping(value, path, LAYER_KEYS, required)
    name = ck.string(m["name"], f"{path}.name")
    if not NAME_RE.match(name):
        raise ck.error(f"{path}.name", f"{name!r} is not an identifier")
    kw: dict[str, Any] = {"name": name, "op": op}
    kw["input_shape"] = ck.int_list(m["input_shape"], f"{path}.input_shape", (1, 3), 1)
    kw["output_shape"] = ck.int_list(m["output_shape"], f"{path}.output_shape", (1, 3), 1)
    kw["input"] = _tensor_quant(ck, m["input"], f"{path}.input", full=False)
    kw["output"] = _tensor_quant(ck, m["output"], f"{path}.output")
    kw["act_min"] = ck.integer(m["act_min"], f"{path}.act_min", -128, 127)
    kw["act_max"] = ck.integer(m["act_max"], f"{path}.act_max", kw["act_min"], 127)
    for key in ("kernel", "pool"):
        if key in m:
            kw["kernel"] = ck.int_list(m[key], f"{path}.{key}", 2, 1)
    if "stride" in m:
        kw["stride"] = ck.int_list(m["stride"], f"{path}.stride", 2, 1)
    if "padding" in m:
        pads = m["padding"]
        if not isinstance(pads, list) or len(pads) != 2:
            raise ck.error(f"{path}.padding", f"expected [[top, bottom], [left, right]]; "
                                              f"got {pads!r}")
        kw["padding"] = (ck.int_list(pads[0], f"{path}.padding[0]", 2, 0),
                         ck.int_list(pads[1], f"{path}.padding[1]", 2, 0))
    if op in WEIGHT_OPS:
        kw["activation"] = ck.string(m["activation"], f"{path}.activation", ACTIVATIONS)
        if op == "depthwise_conv2d":
            kw["depth_multiplier"] = ck.integer(m.get("depth_multiplier"),
                                                f"{path}.depth_multiplier", 1)
        wm = ck.mapping(m["weights"], f"{path}.weights",
                        ("bits", "granularity", "symmetric", "zero_point"),
                        ("bits", "granularity"))
        kw["weight_bits"] = ck.integer(wm["bits"], f"{path}.weights.bits", 2, 8)
        kw["weight_granularity"] = ck.string(wm["granularity"], f"{path}.weights.granularity",
                                             ("per_tensor", "per_channel"))
        kw["macs"] = ck.integer(m["macs"], f"{path}.macs", 0)
        tm = ck.mapping(m["tensors"], f"{path}.tensors", tuple(_ARRAYS), tuple(_ARRAYS))
        for k, attr in _ARRAYS.items():
            tpath = f"{path}.tensors.{k}"
            t = ck.mapping(tm[k], tpath, ("name", "dtype", "shape"), ("name", "dtype", "shape"))
            aname = ck.string(t["name"], f"{tpath}.name")
            if aname not in arrays:
                raise ck.error(f"{tpath}.name", f"array {aname!r} is missing from the .npz")
            arr = arrays[aname]
            want = np.dtype(_ARRAY_DTYPES[k])
            if ck.string(t["dtype"], f"{tpath}.dtype") != want.name or arr.dtype != want:
                raise ck.error(f"{tpath}.dtype", f"array {aname!r} must be {want.name}; the "
                                                 f"YAML says {t['dtype']!r}, the .npz holds "
                                                 f"{arr.dtype}")
            shape = ck.int_list(t["shape"], f"{tpath}.shape", tuple(range(1, 5)), 1)
            if tuple(arr.shape) != shape:
                raise ck.error(f"{tpath}.shape", f"array {aname!r} has shape "
                                                 f"{list(arr.shape)}; the YAML says "
                                                 f"{list(shape)}")
            used.add(aname)
            kw[attr] = arr
    q = QLayer(**kw)
    _check_layer(ck, q, path)
    return q


def _check_layer(ck: Checker, q: QLayer, path: str) -> None:
    """Cross-field checks: shapes, value ranges, the folded bias."""
    if q.op in POOL_OPS + ("flatten",):
        if (q.output.scale, q.output.zero_point) != (q.input.scale, q.input.zero_point):
            raise ck.error(f"{path}.output", f"{q.op} keeps its input's quantization; got "
                                             f"output ({q.output.scale}, "
                                             f"{q.output.zero_point}) vs input "
                                             f"({q.input.scale}, {q.input.zero_point})")
    if q.op == "flatten" and int(np.prod(q.input_shape)) != q.output_shape[0]:
        raise ck.error(f"{path}.output_shape", f"flatten of {list(q.input_shape)} gives "
                                               f"[{int(np.prod(q.input_shape))}]")
    if not q.has_weights:
        return
    w = q.weight
    assert w is not None and q.bias is not None
    half = (1 << (int(q.weight_bits) - 1)) - 1  # type: ignore[arg-type]
    if w.size and int(np.abs(w.astype(np.int16)).max()) > half:
        raise ck.error(f"{path}.tensors.weight", f"values reach "
                                                 f"{int(np.abs(w.astype(np.int16)).max())} "
                                                 f"but {q.weight_bits}-bit symmetric weights "
                                                 f"lie in [-{half}, {half}]")
    c = q.output_shape[-1]
    k = tuple(q.kernel or ())
    expect = {"conv2d": (c, *k, q.input_shape[-1]), "depthwise_conv2d": (1, *k, c),
              "fully_connected": (c, q.input_shape[0])}[q.op]
    if tuple(w.shape) != expect:
        raise ck.error(f"{path}.tensors.weight", f"shape {list(w.shape)} does not fit input "
                                                 f"{list(q.input_shape)} -> output "
                                                 f"{list(q.output_shape)}; expected "
                                                 f"{list(expect)}")
    for k in ("bias", "bias_folded", "m0", "shift", "weight_scale"):
        if getattr(q, k).shape != (c,):
            raise ck.error(f"{path}.tensors.{k}", f"shape {list(getattr(q, k).shape)}; "
                                                  f"expected [{c}]")
    try:
        q.requant()
    except ValueError as exc:
        raise ck.error(path, str(exc)) from None
    folded = fold_input_zero_point(q.bias, q.w2d, q.input.zero_point)
    if not np.array_equal(folded, q.bias_folded):
        bad = int(np.flatnonzero(folded != q.bias_folded)[0])
        raise ck.error(f"{path}.tensors.bias_folded", f"channel {bad}: {int(q.bias_folded[bad])}"
                                                      f" != fold_input_zero_point(bias) = "
                                                      f"{int(folded[bad])}")
    if not np.all(np.isfinite(q.weight_scale)) or np.any(q.weight_scale <= 0):
        raise ck.error(f"{path}.tensors.weight_scale", "must be finite and > 0")


def parse_artifact(config: Any, arrays: Mapping[str, np.ndarray],
                   source: str = "<artifact>") -> QuantizedNetwork:
    """Validate an artifact document with its arrays.

    Raises:
        ValueError naming the source and key path: wrong format / version, unknown or
        missing keys, dtype / shape mismatches, out-of-range values, layers that do not
        chain (shapes or quantization), unused arrays.
    """
    ck = Checker(source)
    top = ck.mapping(config, "", TOP_KEYS, TOP_KEYS)
    if top["format"] != FORMAT:
        raise ck.error("format", f"{top['format']!r} is not {FORMAT!r}")
    if top["version"] != VERSION:
        raise ck.error("version", f"{top['version']!r}: this pymodel reads version {VERSION}")
    name = ck.string(top["name"], "name")
    if not isinstance(top["meta"], Mapping):
        raise ck.error("meta", f"expected a mapping; got {top['meta']!r}")
    inp = ck.mapping(top["input"], "input", TENSOR_KEYS + ("shape", "dtype"),
                     ("shape", "dtype", "scale", "zero_point", "bits", "symmetric", "range"))
    in_shape = ck.int_list(inp["shape"], "input.shape", (1, 3), 1)
    ck.string(inp["dtype"], "input.dtype", ("int8",))
    in_q = _tensor_quant(ck, {k: v for k, v in inp.items() if k not in ("shape", "dtype")},
                         "input")
    used: set[str] = set()
    layers = []
    prev_shape, prev_q = in_shape, in_q
    for i, item in enumerate(ck.sequence(top["layers"], "layers")):
        path = f"layers[{i}]"
        q = _qlayer(ck, item, path, arrays, used)
        if q.input_shape != prev_shape:
            raise ck.error(f"{path}.input_shape", f"{list(q.input_shape)} but the previous "
                                                  f"layer gives {list(prev_shape)}")
        if (q.input.scale, q.input.zero_point) != (prev_q.scale, prev_q.zero_point):
            raise ck.error(f"{path}.input", f"(scale {q.input.scale}, zero_point "
                                            f"{q.input.zero_point}) differs from the previous "
                                            f"tensor's (scale {prev_q.scale}, zero_point "
                                            f"{prev_q.zero_point})")
        q = dataclasses.replace(q, input=prev_q)       # the full record of that tensor
        if q.op in POOL_OPS + ("flatten",):
            q = dataclasses.replace(q, output=prev_q)
        layers.append(q)
        prev_shape, prev_q = q.output_shape, q.output
    names = [q.name for q in layers]
    if len(set(names)) != len(names):
        raise ck.error("layers", f"layer names must be unique; got {names}")
    unused = sorted(set(arrays) - used)
    if unused:
        raise ck.error("arrays", f"the .npz holds arrays no layer names: {', '.join(unused)}")
    am = ck.mapping(top["arrays"], "arrays", ("file", "sha256"), ("file", "sha256"))
    digest = atomicio.arrays_digest(arrays)
    if ck.string(am["sha256"], "arrays.sha256") != digest:
        raise ck.error("arrays.sha256", f"the arrays' content hash is {digest}, not the "
                                        f"recorded {am['sha256']}: the .npz does not belong "
                                        "to this YAML (interrupted or mixed save?)")
    return QuantizedNetwork(name=name, input_shape=in_shape, input=in_q, layers=tuple(layers),
                            meta=dict(top["meta"]), path=source)


def load_artifact(path: str | Path) -> QuantizedNetwork:
    """Load and validate ``<stem>.yaml`` and the ``.npz`` it names.

    Returns:
        :class:`QuantizedNetwork` with typed :class:`QLayer` entries.
    """
    p = Path(path)
    if p.suffix not in (".yaml", ".yml"):
        p = p.with_name(p.name + ".yaml")
    config = load_yaml(p)
    ck = Checker(str(p))
    top = ck.mapping(config, "", TOP_KEYS, TOP_KEYS)
    am = ck.mapping(top["arrays"], "arrays", ("file", "sha256"), ("file", "sha256"))
    npz = p.parent / ck.string(am["file"], "arrays.file")
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ck.error("arrays.file", f"{npz} not found") from None
    except NPZ_READ_ERRORS as exc:
        raise ck.error("arrays.file", f"{npz} is not a readable .npz ({exc})") from None
    return dataclasses.replace(parse_artifact(config, arrays, source=str(p)), path=str(p))

