#!/usr/bin/env python3
"""Generate the committed int8 TFLite test models (``make tflite-models``).

Each model is a small Keras network trained briefly on scikit-learn's 8x8 digits
(upsampled with bilinear interpolation, some given 3 channels), converted by TensorFlow's
``TFLiteConverter`` with full-integer quantization (a representative dataset of training
images; int8 weights, activations, input and output unless the model says otherwise).

Writes, under ``--out`` (default ``models/tflite``):

- ``<name>.tflite``    the converted model
- ``<name>_test.npz``  held-out test images: ``x_float`` (N,H,W,C) float32, the model's float
  input; ``x_int8`` (N,H,W,C) int8, the same images quantized with the model's input scale
  and zero point (round half away from zero, as TFLite's QUANTIZE kernel); ``labels`` (N,)
  int64; ``input_scale`` float32; ``input_zero_point`` int64.  For a model with a float32
  input (``float_io``) ``x_int8`` is still given (the int8 tensor its QUANTIZE op produces).
- ``README.md``        what each model contains (op list with options, tensor count) and how
  to regenerate.

Needs TensorFlow (only this script does; the Makefile target installs it into a separate
``.venv-tf``).  Deterministic: fixed seeds, one thread, oneDNN off, op determinism on.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYTHONHASHSEED", "0")

import numpy as np  # noqa: E402
import scipy.ndimage  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pymodel.frontends.oplist import op_table, read_model  # noqa: E402

SEED = 20261201
N_TEST = 64          # test images stored per model (the issue asks for >= 64)
N_REPRESENTATIVE = 256


# --------------------------------------------------------------------------- data
def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn digits as float32 in [0, 1], shape (N, 8, 8); a fixed 80/20 split."""
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(SEED).permutation(len(x))
    n_train = int(0.8 * len(x))
    tr, te = perm[:n_train], perm[n_train:]
    return x[tr], y[tr], x[te], y[te]


def upsample(x: np.ndarray, size: int) -> np.ndarray:
    """(N, 8, 8) -> (N, size, size) bilinear (scipy ``zoom``, order 1), clipped to [0, 1]."""
    f = size / x.shape[1]
    out = scipy.ndimage.zoom(x, (1, f, f), order=1, mode="nearest", grid_mode=True)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def gray(x: np.ndarray, size: int) -> np.ndarray:
    """One channel in [0, 1], (N, size, size, 1)."""
    return upsample(x, size)[..., None]


def rgb(x: np.ndarray, size: int) -> np.ndarray:
    """Three channels in [-1, 1] (MobileNet's preprocessing), (N, size, size, 3): the digit
    as ink of three different colours on a tinted background, so the channels differ."""
    u = upsample(x, size)[..., None]
    ink = np.array([0.9, 0.4, -0.6], np.float32)
    paper = np.array([-0.8, 0.1, 0.7], np.float32)
    return (paper + (ink - paper) * u).astype(np.float32)


# --------------------------------------------------------------------------- models
def bn(x):
    return layers.BatchNormalization(momentum=0.9)(x)


def mobilenetv2_style(size: int = 24, batch_size: int | None = None) -> keras.Model:
    """MobileNetV2-style: stem conv s2, inverted residual blocks (expand 1x1 / depthwise 3x3
    / project 1x1, ReLU6, residual ADD), a stride-2 SAME depthwise, a depthwise with
    depth multiplier 2, global average pool, FC, softmax."""
    inp = keras.Input((size, size, 3), batch_size=batch_size, name="image")
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inp)   # 12x12x8
    x = layers.ReLU(6.0)(bn(x))

    def block(x, expand: int, out: int, stride: int):
        y = layers.Conv2D(expand, 1, use_bias=False)(x)
        y = layers.ReLU(6.0)(bn(y))
        y = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(y)
        y = layers.ReLU(6.0)(bn(y))
        y = bn(layers.Conv2D(out, 1, use_bias=False)(y))
        if stride == 1 and x.shape[-1] == out:
            y = layers.Add()([x, y])
        return y

    x = block(x, 24, 8, 1)      # residual, 12x12x8
    x = block(x, 24, 16, 2)     # stride-2 SAME depthwise, 6x6x16
    x = block(x, 48, 16, 1)     # residual, 6x6x16
    x = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False)(x)  # 6x6x32
    x = layers.ReLU(6.0)(bn(x))
    x = layers.Conv2D(48, 1, use_bias=False)(x)
    x = layers.ReLU(6.0)(bn(x))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(10)(x)
    out = layers.Softmax()(x)
    return keras.Model(inp, out, name="mobilenetv2_style")


def resnet_style(size: int = 32, batch_size: int | None = None) -> keras.Model:
    """ResNet-style: conv, max pool, identity residual block (ADD + ReLU), a block with a
    1x1 stride-2 projection shortcut, average pool, flatten, FC (logits out)."""
    inp = keras.Input((size, size, 1), batch_size=batch_size, name="image")
    x = layers.Conv2D(8, 3, padding="same", use_bias=False)(inp)
    x = layers.ReLU()(bn(x))
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)               # 16x16x8
    y = layers.ReLU()(bn(layers.Conv2D(8, 3, padding="same", use_bias=False)(x)))
    y = bn(layers.Conv2D(8, 3, padding="same", use_bias=False)(y))
    x = layers.ReLU()(layers.Add()([x, y]))
    y = layers.ReLU()(bn(layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(x)))
    y = bn(layers.Conv2D(16, 3, padding="same", use_bias=False)(y))      # 8x8x16
    s = bn(layers.Conv2D(16, 1, strides=2, use_bias=False)(x))            # projection
    x = layers.ReLU()(layers.Add()([s, y]))
    x = layers.AveragePooling2D(3, strides=2, padding="same")(x)          # 4x4x16
    x = layers.Flatten()(x)
    out = layers.Dense(10)(x)
    return keras.Model(inp, out, name="resnet_style")


class HardSwish(layers.Layer):
    """x * relu6(x + 3) / 6, written as MobileNetV3's Keras code writes it (the converter
    recognises the pattern and emits HARD_SWISH)."""

    def call(self, x):
        return x * (tf.nn.relu6(x + 3.0) * (1.0 / 6.0))


class PadConst(layers.Layer):
    """tf.pad with a non-zero constant -> PADV2."""

    def __init__(self, pad: int, value: float, **kw):
        super().__init__(**kw)
        self.pad, self.value = pad, value

    def call(self, x):
        p = self.pad
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=self.value)


class ChannelScale(layers.Layer):
    """x * w with a learned per-channel vector w -> MUL with a constant."""

    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1],), initializer="ones", name="w")

    def call(self, x):
        return x * self.w


class SpatialMean(layers.Layer):
    """reduce_mean over H, W with keep_dims -> MEAN."""

    def call(self, x):
        return tf.reduce_mean(x, axis=[1, 2], keepdims=True)


class Squeeze(layers.Layer):
    """tf.squeeze of the unit H, W axes -> SQUEEZE."""

    def call(self, x):
        return tf.squeeze(x, axis=[1, 2])


def misc(size: int = 16, batch_size: int | None = None) -> keras.Model:
    """The remaining ops: PAD, dilated conv, HARD_SWISH, MUL with a constant, LOGISTIC, MUL
    of two activations, PADV2, LEAKY_RELU, SUB, a concatenation with a LOGISTIC output
    (whose fixed scale 1/256 differs from the other input's: an int8->int8 QUANTIZE), FC on
    a 4-D tensor (keep_num_dims), MEAN, RELU, SOFTMAX, SQUEEZE."""
    inp = keras.Input((size, size, 1), batch_size=batch_size, name="image")
    x = layers.ZeroPadding2D(1)(inp)                                       # 18x18
    a = layers.Conv2D(8, 3, dilation_rate=2)(x)                            # 14x14x8
    h = ChannelScale()(HardSwish()(a))
    g = layers.Activation("sigmoid")(layers.Conv2D(8, 1)(h))
    m = layers.Multiply()([h, g])
    p = PadConst(1, -0.5)(m)                                               # 16x16x8
    l = layers.LeakyReLU(negative_slope=0.1)(layers.Conv2D(16, 3, strides=2)(p))  # 7x7x16
    k = layers.Conv2D(16, 1)(l)
    d = layers.Subtract()([l, k])
    t = layers.Activation("sigmoid")(layers.Conv2D(8, 1)(l))
    c = layers.Concatenate()([d, t])                                       # 7x7x24
    f = layers.Dense(16)(c)                                                # 7x7x16
    v = layers.ReLU()(SpatialMean()(f))                                    # 1x1x16
    v = layers.Softmax()(layers.Dense(10)(v))                              # 1x1x10
    out = Squeeze()(v)
    return keras.Model(inp, out, name="misc")


def float_io(size: int = 8, batch_size: int | None = None) -> keras.Model:
    """Float32 input and output around an int8 body: QUANTIZE (float -> int8) at the input,
    DEQUANTIZE at the output (how the converter leaves a model by default); a standalone
    RELU6, a MAX_POOL_2D with a fused RELU6."""
    inp = keras.Input((size, size, 1), batch_size=batch_size, name="image")
    x = layers.ReLU(6.0)(inp)                    # after QUANTIZE: a standalone RELU6
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.ReLU(6.0)(layers.Flatten()(x))    # the converter fuses it into MAX_POOL_2D
    out = layers.Dense(10)(x)
    return keras.Model(inp, out, name="float_io")


MODELS = {
    # name: (builder, preprocessing, float interface, epochs, description)
    "mobilenetv2_style": (mobilenetv2_style, lambda x: rgb(x, 24), False, 12,
                          "MobileNetV2-style, 24x24x3 input in [-1, 1]"),
    "resnet_style": (resnet_style, lambda x: gray(x, 32), False, 8,
                     "ResNet-style, 32x32x1 input in [0, 1]"),
    "misc": (misc, lambda x: gray(x, 16), False, 40,
             "the remaining ops, 16x16x1 input in [0, 1]"),
    "float_io": (float_io, lambda x: gray(x, 8), True, 8,
                 "float32 interface around an int8 body, 8x8x1 input in [0, 1]"),
}


# --------------------------------------------------------------------------- pipeline
def train(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
    """Adam (lr 3e-3), batch 32, sparse cross-entropy; x (N,H,W,C) float32, y (N,) int64."""
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=model.layers[-1].__class__.__name__ != "Softmax"),
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=epochs, shuffle=True, verbose=0)


def convert(model: keras.Model, rep: np.ndarray, float_interface: bool) -> bytes:
    """Full-integer conversion of ``model`` (built with a static batch of 1)."""
    def representative():
        for i in range(len(rep)):
            yield [rep[i:i + 1]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_interface:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


# Models whose output RESHAPE is rewritten to SQUEEZE (see reshape_to_squeeze).
SQUEEZE_OUTPUT = {"misc"}


def reshape_to_squeeze(blob: bytes) -> bytes:
    """Rewrite the RESHAPE that produces the graph output into the equivalent SQUEEZE.

    The converter turns every ``tf.squeeze`` with static shapes into RESHAPE (its optimizer
    pattern ConvertSqueezeToReshape), so no converted model has a SQUEEZE op; the importer
    must still read one.  The rewrite is exact: the RESHAPE only drops unit dimensions, and
    SQUEEZE with those ``squeeze_dims`` computes the same tensor.  The RESHAPE's shape
    operand stays in the tensor list, unused (as converted models sometimes have).
    """
    from tensorflow.lite.python import schema_py_generated as fb
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(blob))
    graph = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    op = next(o for o in graph.operators
              if codes[o.opcodeIndex] == fb.BuiltinOperator.RESHAPE
              and o.outputs[0] in list(graph.outputs))
    shape_in = list(graph.tensors[op.inputs[0]].shape)
    shape_out = list(graph.tensors[op.outputs[0]].shape)
    dims = [i for i, d in enumerate(shape_in) if d == 1 and i > 0]
    assert [d for i, d in enumerate(shape_in) if i not in dims] == shape_out, (shape_in, shape_out)
    code = fb.OperatorCodeT()
    code.builtinCode = fb.BuiltinOperator.SQUEEZE
    code.deprecatedBuiltinCode = fb.BuiltinOperator.SQUEEZE
    code.version = 1
    model.operatorCodes.append(code)
    op.opcodeIndex = len(model.operatorCodes) - 1
    op.inputs = [op.inputs[0]]
    op.builtinOptionsType = fb.BuiltinOptions.SqueezeOptions
    op.builtinOptions = fb.SqueezeOptionsT()
    op.builtinOptions.squeezeDims = dims
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def quantize_input(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float -> int8 as TFLite's QUANTIZE kernel: round half away from zero, clamp."""
    v = x / np.float32(scale)
    r = np.sign(v) * np.floor(np.abs(v) + 0.5)
    return np.clip(r + zero_point, -128, 127).astype(np.int8)


def readme_section(name: str, desc: str, path: Path, accuracy: float) -> str:
    info = read_model(path)
    t_in = info.tensors[info.inputs[0]]
    t_out = info.tensors[info.outputs[0]]
    lines = [f"## {name}", "", f"{desc}.  {path.stat().st_size} bytes, "
             f"{len(info.tensors)} tensors, {len(info.ops)} operators; input "
             f"`{t_in.dtype}{list(t_in.shape)}`, output `{t_out.dtype}{list(t_out.shape)}`; "
             f"int8 accuracy on the {N_TEST} stored test images (TensorFlow's TFLite "
             f"interpreter): {accuracy:.3f}.", "",
             ]
    return "\n".join(lines) + "\n" + op_table(info)


def run_tflite(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """Outputs (N, ...) of the converted model on x (N, H, W, C), one image at a time."""
    interp = tf.lite.Interpreter(model_content=model_bytes)
    interp.allocate_tensors()
    i_det, o_det = interp.get_input_details()[0], interp.get_output_details()[0]
    outs = []
    for img in x:
        interp.set_tensor(i_det["index"], img[None])
        interp.invoke()
        outs.append(interp.get_tensor(o_det["index"])[0].copy())
    return np.stack(outs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "models" / "tflite")
    ap.add_argument("--only", nargs="*", choices=sorted(MODELS), help="models to build")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()

    xtr8, ytr, xte8, yte = digits_split()
    sections = []
    for name, (build, prep, float_if, epochs, desc) in MODELS.items():
        if args.only and name not in args.only:
            continue
        keras.backend.clear_session()   # fresh layer names: bytes independent of --only
        keras.utils.set_random_seed(SEED)
        xtr, xte = prep(xtr8), prep(xte8)
        trained = build()
        train(trained, xtr, ytr, epochs)
        weights = trained.get_weights()
        keras.backend.clear_session()
        model = build(batch_size=1)   # the same network with a static batch of 1
        model.set_weights(weights)
        rep = xtr[np.random.default_rng(SEED + 1).permutation(len(xtr))[:N_REPRESENTATIVE]]
        blob = convert(model, rep, float_if)
        if name in SQUEEZE_OUTPUT:
            blob = reshape_to_squeeze(blob)
        path = args.out / f"{name}.tflite"
        path.write_bytes(blob)

        info = read_model(path)
        t_in = info.tensors[info.inputs[0]]
        if float_if:  # the int8 tensor behind the input QUANTIZE op
            q_op = next(op for op in info.ops if info.inputs[0] in op.inputs)
            t_q = info.tensors[q_op.outputs[0]]
        else:
            t_q = t_in
        scale, zp = t_q.scale[0], t_q.zero_point[0]
        x_float = xte[:N_TEST]
        x_int8 = quantize_input(x_float, scale, zp)
        np.savez_compressed(
            args.out / f"{name}_test.npz", x_float=x_float, x_int8=x_int8,
            labels=yte[:N_TEST], input_scale=np.float32(scale), input_zero_point=np.int64(zp))
        y = run_tflite(blob, x_float if float_if else x_int8)
        acc = float(np.mean(np.argmax(y.reshape(len(y), -1), axis=1) == yte[:N_TEST]))
        f_acc = float(np.mean(np.argmax(trained.predict(xte, verbose=0), axis=1) == yte))
        print(f"{name}: {len(blob)} bytes, {len(info.ops)} ops, float accuracy {f_acc:.3f} "
              f"({len(yte)} test images), int8 accuracy {acc:.3f} ({N_TEST})", flush=True)
        sections.append(readme_section(name, desc, path, acc))

    if not args.only:
        (args.out / "README.md").write_text(README_HEAD + "\n" + "\n".join(sections))
    return 0


README_HEAD = f"""# int8 TFLite test models

Small int8 `.tflite` models for qmac's TFLite importer and its conformance tests against
LiteRT and TensorFlow Lite Micro.  Generated once by `scripts/gen_tflite_models.py`
(TensorFlow {tf.__version__}, Keras {keras.__version__}); regenerate with

    make tflite-models

which creates a separate virtual environment `.venv-tf` with TensorFlow (the regression,
`make test`, does not need TensorFlow) and rewrites this folder.  Each model is a small Keras
network trained for a few epochs on scikit-learn's 8x8 digits (80/20 split with seed
{SEED}, upsampled bilinearly), converted with full-integer quantization (representative
dataset: {N_REPRESENTATIVE} training images; per-channel int8 weights, int32 biases, int8
activations; int8 input and output except `float_io`).

`<name>_test.npz` holds the first {N_TEST} held-out test images: `x_float` (the model's float
input, N x H x W x C float32), `x_int8` (the same quantized with the input tensor's scale and
zero point, round half away from zero), `labels`, `input_scale`, `input_zero_point`.

Conversion: `tf.lite.TFLiteConverter.from_keras_model` on a copy of the trained network
with a static batch of 1, `optimizations=[Optimize.DEFAULT]`, `supported_ops=
[TFLITE_BUILTINS_INT8]`, `inference_input_type` / `inference_output_type` int8 (float32 for
`float_io`, which therefore starts with QUANTIZE float32->int8 and ends with DEQUANTIZE).
Batch normalization is folded into the convolutions by the converter.

Where the converter needed coaxing to emit an op of the issue's list:

- PAD stays a separate op only when it cannot be folded into the next convolution's SAME
  padding (pad 1 before a dilated 3x3 VALID convolution, effective kernel 5).
- PADV2: `tf.pad` with a non-zero constant (-0.5).
- HARD_SWISH: `x * relu6(x + 3) * (1/6)`, the MobileNetV3 form the converter pattern-matches.
- int8->int8 QUANTIZE: a CONCATENATION of a LOGISTIC output (fixed scale 1/256) with another
  tensor; the converter requantizes the LOGISTIC output to the concatenation's scale.
- MUL with a constant: a learned per-channel scale after HARD_SWISH (nothing to fold it into).
- standalone RELU / RELU6: after MEAN / after the input QUANTIZE (ops with no fused
  activation); a RELU6 after a flatten is moved before it and fused into MAX_POOL_2D.
- SQUEEZE: the converter turns every static `tf.squeeze` into RESHAPE, so the generator
  rewrites `misc`'s final RESHAPE (1,1,1,10)->(1,10) into the equivalent SQUEEZE
  (squeeze_dims [1, 2]) with TensorFlow's flatbuffer_utils; its shape operand stays in the
  tensor list, unused.  LiteRT and TFLM run the rewritten model.

`tests/test_tflite_models.py` checks that the four models together still cover every op of
issue 10 with its options, and `make runtimes-study` compares the runtimes on them.

The operator tables below are listed with the `tflite` schema package
(`pymodel.frontends.oplist`); `const[...]` marks an input stored in the file.
"""

if __name__ == "__main__":
    sys.exit(main())
