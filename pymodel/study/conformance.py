"""Conformance of the golden model with TFLite runtimes, tensor by tensor.

:func:`compare` imports a ``.tflite`` model (:mod:`pymodel.frontends.tflite_import`),
runs the artifact in the golden model (:func:`pymodel.graph.inference.run_tensors`) and
the model in a LiteRT interpreter with every intermediate tensor preserved, and counts,
per layer, the elements that differ.  ``tests/test_tflite_conformance.py`` asserts zero
differences against the integer-path kernels; ``python -m pymodel.study.conformance``
writes the table of ``docs/conformance.md`` into a build directory.

LiteRT is a test dependency (``ai-edge-litert``); it is imported only when a comparison
runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pymodel.frontends.tflite_import import import_tflite
from pymodel.graph.artifact import INPUT, QuantizedNetwork
from pymodel.graph.inference import run_layer, run_tensors

#: LiteRT op resolvers: the reference kernels, the optimized builtin kernels, and the
#: default interpreter (XNNPACK delegate applied).
KERNELS = ("reference", "optimized", "default")


@dataclass
class LayerDiff:
    """Golden vs runtime for one layer's output tensor.

    Attributes:
        layer, op: artifact layer name and op.
        tensor: TFLite tensor index of the layer's output.
        elements: elements compared (over every input image).
        differing: elements that are not equal.
        max_abs: largest ``|golden - runtime|`` (0 when equal).
    """

    layer: str
    op: str
    tensor: int
    elements: int = 0
    differing: int = 0
    max_abs: int = 0


def litert_tensors(model_path: str | Path, x: np.ndarray, indices: Sequence[int],
                   kernels: str = "reference") -> dict[int, np.ndarray]:
    """Run a batch-1 model image by image in LiteRT; every requested tensor, stacked.

    Args:
        model_path: the ``.tflite`` file.
        x: int8 ``[N, *input_shape]`` (the model's int8 input tensor, batch dim dropped).
        indices: tensor indices to return (intermediate tensors are preserved).
        kernels: one of :data:`KERNELS`.

    Returns:
        ``{tensor index: array [N, *shape]}``.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    resolver = {"reference": OpResolverType.BUILTIN_REF,
                "optimized": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                "default": OpResolverType.AUTO}[kernels]
    it = Interpreter(model_path=str(model_path), experimental_op_resolver_type=resolver,
                     experimental_preserve_all_tensors=True, num_threads=1)
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]
    out: dict[int, list[np.ndarray]] = {i: [] for i in indices}
    for img in x:
        it.set_tensor(inp, img[None].astype(np.int8))
        it.invoke()
        for i in indices:
            out[i].append(np.array(it.get_tensor(i))[0])
    return {i: np.stack(v) for i, v in out.items()}


def compare(model_path: str | Path, x: np.ndarray, kernels: str = "reference",
            qnet: QuantizedNetwork | None = None, isolate: bool = True) -> list[LayerDiff]:
    """Every layer's output: golden model vs LiteRT (``kernels``) on the int8 batch ``x``.

    Args:
        isolate: run each golden layer on the *runtime's* input tensors, so that a
            difference is the op's own and not one propagated from an earlier layer
            (``False``: the golden model runs the whole graph on its own tensors).
    """
    qnet = qnet or import_tflite(model_path)
    mapping = dict(qnet.meta["tflite"]["tensors"])
    ref = litert_tensors(model_path, x, list(mapping.values()), kernels)
    if isolate:
        shaped = {INPUT: x}
        golden = {}
        for layer in qnet.layers:
            args = [shaped[n] for n in layer.inputs]
            golden[layer.name] = run_layer(layer, *args)
            shaped[layer.name] = ref[mapping[layer.name]].reshape(golden[layer.name].shape)
    else:
        golden = run_tensors(qnet, x)
    rows = []
    for layer in qnet.layers:
        t = mapping[layer.name]
        g = golden[layer.name].astype(np.int32)
        r = ref[t].astype(np.int32).reshape(g.shape)
        d = np.abs(g - r)
        rows.append(LayerDiff(layer.name, layer.op, t, int(g.size), int(np.count_nonzero(d)),
                              int(d.max()) if d.size else 0))
    return rows


def by_op(rows: Sequence[LayerDiff]) -> dict[str, tuple[int, int, int]]:
    """``{op: (elements, differing, max |diff|)}`` summed over layers."""
    out: dict[str, tuple[int, int, int]] = {}
    for r in rows:
        e, d, m = out.get(r.op, (0, 0, 0))
        out[r.op] = (e + r.elements, d + r.differing, max(m, r.max_abs))
    return out


def model_inputs(model_path: str | Path, qnet: QuantizedNetwork, images: int = 64,
                 random: int = 64, seed: int = 0) -> np.ndarray:
    """The conformance inputs: the model's bundled int8 test images (``<stem>_test.npz``
    beside it, array ``x_int8``) and ``random`` seeded uniform int8 inputs."""
    parts = []
    bundled = Path(model_path).with_name(Path(model_path).stem + "_test.npz")
    if bundled.exists() and images:
        with np.load(bundled) as z:
            parts.append(np.asarray(z["x_int8"][:images], np.int8))
    if random:
        rng = np.random.default_rng(seed)
        parts.append(rng.integers(-128, 128, (random, *qnet.input_shape)).astype(np.int8))
    return np.concatenate(parts)


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import sys
    p = argparse.ArgumentParser(prog="python -m pymodel.study.conformance",
                                description="golden model vs LiteRT, every tensor")
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--kernels", choices=KERNELS, default="reference")
    args = p.parse_args(argv)
    for m in args.models:
        qnet = import_tflite(m)
        x = model_inputs(m, qnet)
        for r in compare(m, x, args.kernels, qnet):
            print(f"{m.stem:20s} {r.layer:24s} {r.op:18s} {r.elements:9d} {r.differing:7d} "
                  f"{r.max_abs:4d}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
