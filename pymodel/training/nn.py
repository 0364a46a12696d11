"""A small autograd-free training API: layers with ``forward`` / ``backward``.

Each module computes its forward pass with the same operations as the float references
of :mod:`pymodel.ops.layers` (``im2col`` then a GEMM, NHWC, TFLite weight layouts) and its
backward pass by hand.  Modules are built from a :class:`pymodel.graph.network.Network`
description, and their parameters are exported back under the network's tensor names
(``<layer>.weight`` / ``<layer>.bias``), so a trained model *is* a network ``.npz``.

Hooks for quantization-aware training: every weight module has ``weight_hook``,
``bias_hook`` and ``output_hook`` (default ``None``).  A hook is any object with

* ``forward(x: ndarray, train: bool) -> ndarray`` and
* ``backward(dy: ndarray) -> ndarray`` (the gradient with respect to its input),

applied to the weight before the GEMM, to the bias before it is added (the integer
path quantizes the bias to int32 at scale ``s_in * s_w[c]``, so the fake-quant forward
must use that value too) and to the layer output after the fused activation -- where a
fake-quant op with a straight-through estimator goes.  :mod:`pymodel.quantization.qat` uses the
weight and bias slots and quantizes the outputs itself (it runs the integer
requantization, which needs the layer's integer input).

Graph networks (``inputs``, ``add``, ``concat``): :func:`from_network` returns a
:class:`Graph` -- the same modules plus :class:`Add` / :class:`Concat`, walked over the
DAG; its backward sums the gradients of a tensor read by several layers (fan-out), hands
an add's gradient (through its fused activation) to both inputs and splits a concat's.
A chain still gets a :class:`Sequential` (its arithmetic is unchanged).

Optimizers: :class:`SGD` (momentum) and :class:`Adam`.  Loss:
:func:`softmax_cross_entropy`.  All arrays are float64.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Protocol

import numpy as np

from pymodel.arithmetic.gemm import Padding, im2col, output_hw, pair, resolve_padding
from pymodel.ops.layers import apply_activation
from pymodel.graph.network import INPUT_TENSOR, LayerSpec, Network


class Hook(Protocol):
    """Transform inserted in a module's forward pass (QAT fake quantization)."""

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray: ...

    def backward(self, dy: np.ndarray) -> np.ndarray: ...


def activation_grad(z: np.ndarray, dy: np.ndarray, activation: str) -> np.ndarray:
    """Gradient through a fused activation: ``dy * act'(z)`` (``z`` = pre-activation)."""
    if activation == "relu":
        return dy * (z > 0)
    if activation == "relu6":
        return dy * ((z > 0) & (z < 6.0))
    return dy


def col2im(dcols: np.ndarray, x_shape: tuple[int, ...], kernel: tuple[int, int],
           stride: tuple[int, int], pads: tuple[tuple[int, int], tuple[int, int]]
           ) -> np.ndarray:
    """Adjoint of :func:`pymodel.arithmetic.gemm.im2col`: scatter-add GEMM rows back to NHWC.

    Args:
        dcols: ``[N*OH*OW, KH*KW*C]`` (rows ``(n, oh, ow)``, columns ``(kh, kw, c)``).
        x_shape: ``(N, H, W, C)`` of the unpadded input.
        kernel, stride: ``(kh, kw)``, ``(sh, sw)``.
        pads: ``((top, bottom), (left, right))``.

    Returns:
        float64 ``[N, H, W, C]``.
    """
    n, h, w, c = x_shape
    kh, kw = kernel
    sh, sw = stride
    oh, ow = output_hw((h, w), kernel, stride, pads)
    (pt, pb), (pl, pr) = pads
    dx = np.zeros((n, h + pt + pb, w + pl + pr, c), np.float64)
    d = dcols.reshape(n, oh, ow, kh, kw, c)
    for a in range(kh):
        for b in range(kw):
            dx[:, a:a + sh * (oh - 1) + 1:sh, b:b + sw * (ow - 1) + 1:sw, :] += d[:, :, :, a, b, :]
    return dx[:, pt:pt + h, pl:pl + w, :]


class Module:
    """Base class: ``forward(x, train)``, ``backward(dy)``, ``params`` / ``grads``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class _WeightModule(Module):
    """Shared parts of weight layers: hooks, fused activation, parameter gradients."""

    def __init__(self, name: str, weight: np.ndarray, bias: np.ndarray,
                 activation: str = "none") -> None:
        super().__init__(name)
        self.params = {"weight": np.array(weight, np.float64),
                       "bias": np.array(bias, np.float64)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.activation = activation
        self.weight_hook: Hook | None = None
        self.bias_hook: Hook | None = None
        self.output_hook: Hook | None = None
        self._cache: dict[str, Any] = {}

    def _weight(self, train: bool) -> np.ndarray:
        w = self.params["weight"]
        return w if self.weight_hook is None else self.weight_hook.forward(w, train)

    def _bias(self, train: bool) -> np.ndarray:
        b = self.params["bias"]
        return b if self.bias_hook is None else self.bias_hook.forward(b, train)

    def _finish(self, z: np.ndarray, train: bool) -> np.ndarray:
        self._cache["z"] = z
        y = apply_activation(z, self.activation)
        return y if self.output_hook is None else self.output_hook.forward(y, train)

    def _start_backward(self, dy: np.ndarray) -> np.ndarray:
        if self.output_hook is not None:
            dy = self.output_hook.backward(dy)
        return activation_grad(self._cache["z"], dy, self.activation)

    def _set_weight_grad(self, dw: np.ndarray) -> None:
        self.grads["weight"] = dw if self.weight_hook is None else self.weight_hook.backward(dw)

    def _set_bias_grad(self, db: np.ndarray) -> None:
        self.grads["bias"] = db if self.bias_hook is None else self.bias_hook.backward(db)


class Conv2D(_WeightModule):
    """2-D convolution, NHWC, weight ``[out, kh, kw, in]``, bias ``[out]``."""

    def __init__(self, name: str, weight: np.ndarray, bias: np.ndarray, stride: Any = 1,
                 padding: Padding = "valid", activation: str = "none") -> None:
        super().__init__(name, weight, bias, activation)
        self.stride = pair("stride", stride)
        self.padding = padding

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        w = self._weight(train)
        kernel = w.shape[1:3]
        cols, (oh, ow) = im2col(x, kernel, self.stride, self.padding, pad_value=0.0)
        w2 = w.reshape(w.shape[0], -1)
        z = (cols @ w2.T).reshape(x.shape[0], oh, ow, w.shape[0]) + self._bias(train)
        self._cache.update(cols=cols, w2=w2, x_shape=x.shape, kernel=kernel)
        return self._finish(z, train)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dz = self._start_backward(dy)
        c = self._cache
        dz2 = dz.reshape(-1, dz.shape[-1])
        self._set_weight_grad((dz2.T @ c["cols"]).reshape(self.params["weight"].shape))
        self._set_bias_grad(dz2.sum(axis=0))
        pads = resolve_padding(self.padding, c["x_shape"][1:3], c["kernel"], self.stride)
        return col2im(dz2 @ c["w2"], c["x_shape"], c["kernel"], self.stride, pads)


class DepthwiseConv2D(_WeightModule):
    """Depthwise convolution, weight ``[1, kh, kw, C * m]``."""

    def __init__(self, name: str, weight: np.ndarray, bias: np.ndarray, stride: Any = 1,
                 padding: Padding = "valid", activation: str = "none") -> None:
        super().__init__(name, weight, bias, activation)
        self.stride = pair("stride", stride)
        self.padding = padding

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        w = self._weight(train)
        c = x.shape[3]
        mult = w.shape[3] // c
        kh, kw = w.shape[1:3]
        cols, (oh, ow) = im2col(x, (kh, kw), self.stride, self.padding, pad_value=0.0)
        taps = cols.reshape(-1, kh * kw, c)
        wt = w.reshape(kh * kw, c, mult)
        z = np.einsum("mtc,tcj->mcj", taps, wt).reshape(x.shape[0], oh, ow, c * mult)
        z = z + self._bias(train)
        self._cache.update(taps=taps, wt=wt, x_shape=x.shape, kernel=(kh, kw))
        return self._finish(z, train)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dz = self._start_backward(dy)
        cache = self._cache
        taps, wt = cache["taps"], cache["wt"]
        c, mult = wt.shape[1], wt.shape[2]
        dz3 = dz.reshape(-1, c, mult)
        self._set_weight_grad(np.einsum("mtc,mcj->tcj", taps, dz3)
                              .reshape(self.params["weight"].shape))
        self._set_bias_grad(dz3.reshape(-1, c * mult).sum(axis=0))
        dtaps = np.einsum("tcj,mcj->mtc", wt, dz3).reshape(taps.shape[0], -1)
        pads = resolve_padding(self.padding, cache["x_shape"][1:3], cache["kernel"],
                               self.stride)
        return col2im(dtaps, cache["x_shape"], cache["kernel"], self.stride, pads)


class Dense(_WeightModule):
    """Fully connected: ``x [N, in] @ weight[out, in].T + bias``."""

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        w = self._weight(train)
        self._cache.update(x=x, w=w)
        return self._finish(x @ w.T + self._bias(train), train)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dz = self._start_backward(dy)
        self._set_weight_grad(dz.T @ self._cache["x"])
        self._set_bias_grad(dz.sum(axis=0))
        return dz @ self._cache["w"]


class Pool2D(Module):
    """Max or average pooling over in-image taps (the float references' semantics)."""

    def __init__(self, name: str, kind: str, pool: Any, stride: Any = None,
                 padding: Padding = "valid") -> None:
        super().__init__(name)
        self.kind = kind
        self.pool = pair("pool", pool)
        self.stride = self.pool if stride is None else pair("stride", stride)
        self.padding = padding
        self._cache: dict[str, Any] = {}

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        n, h, w, c = x.shape
        fill = -np.inf if self.kind == "max" else 0.0
        cols, (oh, ow) = im2col(x, self.pool, self.stride, self.padding, pad_value=fill)
        win = cols.reshape(n * oh * ow, -1, c)                        # [M, T, C]
        inside, _ = im2col(np.ones((1, h, w, 1)), self.pool, self.stride, self.padding, 0.0)
        count = inside.sum(axis=1)                                     # [OH*OW]
        self._cache.update(x_shape=x.shape, out=(oh, ow))
        if self.kind == "max":
            arg = win.argmax(axis=1)                                   # [M, C]
            self._cache["arg"] = arg
            y = np.take_along_axis(win, arg[:, None, :], axis=1)[:, 0, :]
        else:
            self._cache["count"] = count
            y = win.sum(axis=1) / np.tile(count, n)[:, None]
        return y.reshape(n, oh, ow, c)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        n, h, w, c = self._cache["x_shape"]
        taps = self.pool[0] * self.pool[1]
        d = dy.reshape(-1, c)
        dwin = np.zeros((d.shape[0], taps, c))
        if self.kind == "max":
            np.put_along_axis(dwin, self._cache["arg"][:, None, :], d[:, None, :], axis=1)
        else:
            dwin += (d / np.tile(self._cache["count"], n)[:, None])[:, None, :]
        pads = resolve_padding(self.padding, (h, w), self.pool, self.stride)
        return col2im(dwin.reshape(d.shape[0], -1), (n, h, w, c), self.pool, self.stride, pads)


class Flatten(Module):
    """``[N, H, W, C] -> [N, H*W*C]`` in NHWC order (``C`` fastest)."""

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy.reshape(self._shape)


class Sequential:
    """Modules in order.

    Attributes:
        modules: the modules.
    """

    def __init__(self, modules: list[Module]) -> None:
        self.modules = list(modules)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        for m in self.modules:
            x = m.forward(x, train)
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        for m in reversed(self.modules):
            dy = m.backward(dy)
        return dy

    def parameters(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """``(tensor name, parameter, gradient)`` of every trainable array."""
        for m in self.modules:
            for k, v in m.params.items():
                yield f"{m.name}.{k}", v, m.grads[k]

    def state(self) -> dict[str, np.ndarray]:
        """Copies of the parameters under the network's tensor names."""
        return {name: p.copy() for name, p, _ in self.parameters()}

    def load_state(self, params: Mapping[str, np.ndarray]) -> None:
        for m in self.modules:
            for k in m.params:
                m.params[k][...] = params[f"{m.name}.{k}"]

    def __getitem__(self, name: str) -> Module:
        for m in self.modules:
            if m.name == name:
                return m
        raise KeyError(name)


class Add(Module):
    """Element-wise sum of two (or more) tensors with a fused activation (the float
    ``add`` of :func:`pymodel.graph.network.float_node`).  Multi-input: ``forward`` takes
    the list of inputs, ``backward`` returns one gradient per input (the same
    ``dy * act'(z)`` for each: ``d(a + b) / da = d(a + b) / db = 1``)."""

    multi_input = True

    def __init__(self, name: str, activation: str = "none") -> None:
        super().__init__(name)
        self.activation = activation
        self._n = 0
        self._z: np.ndarray | None = None

    def forward(self, xs: list[np.ndarray], train: bool = False) -> np.ndarray:  # type: ignore[override]
        z = np.asarray(xs[0], np.float64)
        for x in xs[1:]:
            z = z + np.asarray(x, np.float64)
        self._n, self._z = len(xs), z
        return apply_activation(z, self.activation)

    def backward(self, dy: np.ndarray) -> list[np.ndarray]:  # type: ignore[override]
        assert self._z is not None
        dz = activation_grad(self._z, dy, self.activation)
        return [dz] + [dz.copy() for _ in range(self._n - 1)]


class Concat(Module):
    """Concatenation along the last (channel / feature) axis.  Multi-input; ``backward``
    splits the gradient at the inputs' channel counts."""

    multi_input = True

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._sizes: list[int] = []

    def forward(self, xs: list[np.ndarray], train: bool = False) -> np.ndarray:  # type: ignore[override]
        self._sizes = [int(x.shape[-1]) for x in xs]
        return np.concatenate([np.asarray(x, np.float64) for x in xs], axis=-1)

    def backward(self, dy: np.ndarray) -> list[np.ndarray]:  # type: ignore[override]
        return np.split(dy, np.cumsum(self._sizes)[:-1], axis=-1)


def node_forward(module: Module, xs: list[np.ndarray], train: bool = False) -> np.ndarray:
    """Run one graph node: a multi-input module on the list, any other on ``xs[0]``."""
    if getattr(module, "multi_input", False):
        return module.forward(xs, train)  # type: ignore[arg-type]
    return module.forward(xs[0], train)


def node_backward(module: Module, dy: np.ndarray) -> list[np.ndarray]:
    """One gradient per input of a node (:func:`node_forward`)."""
    if getattr(module, "multi_input", False):
        return module.backward(dy)  # type: ignore[return-value]
    return [module.backward(dy)]


class Graph(Sequential):
    """Modules over a DAG (a float network with ``inputs``, ``add``, ``concat``).

    ``modules[i]`` reads the tensors ``inputs[i]`` (``"input"`` or earlier modules'
    names); the output is the last module's.  Backward walks the modules in reverse,
    gives each its output's gradient -- the *sum* of the gradients from every reader
    of the tensor (fan-out) -- and adds the gradients it returns into its inputs'.

    Attributes:
        modules: in the network's layer order; inputs: the tensor names each reads.
    """

    def __init__(self, modules: list[Module], inputs: list[tuple[str, ...]]) -> None:
        super().__init__(modules)
        if len(inputs) != len(self.modules):
            raise ValueError(f"inputs: {len(inputs)} lists for {len(self.modules)} modules")
        self.inputs = [tuple(i) for i in inputs]

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        tensors: dict[str, np.ndarray] = {INPUT_TENSOR: x}
        for m, srcs in zip(self.modules, self.inputs):
            tensors[m.name] = node_forward(m, [tensors[s] for s in srcs], train)
        return tensors[self.modules[-1].name]

    def backward(self, dy: np.ndarray,
                 output_grad: Callable[[str, np.ndarray], np.ndarray] | None = None
                 ) -> np.ndarray:
        """Gradient with respect to the graph input.

        Args:
            dy: gradient of the loss with respect to the output.
            output_grad: optional ``(module name, gradient) -> gradient`` applied to a
                module's (summed) output gradient before its backward (QAT puts the
                STE of the output's fake quantization here).
        """
        grads: dict[str, np.ndarray] = {self.modules[-1].name: dy}
        for m, srcs in zip(reversed(self.modules), reversed(self.inputs)):
            g = grads.pop(m.name, None)
            if g is None:               # an output nothing reads (validation forbids it)
                continue
            if output_grad is not None:
                g = output_grad(m.name, g)
            for src, dx in zip(srcs, node_backward(m, g)):
                grads[src] = grads[src] + dx if src in grads else dx
        return grads[INPUT_TENSOR]


def module_for(spec: LayerSpec, params: Mapping[str, np.ndarray] | None,
               rng: np.random.Generator | None) -> Module:
    """The trainable module of one layer; He-normal initialization when ``params`` is
    ``None`` (weights ``N(0, 2 / fan_in)``, biases 0)."""
    if spec.has_weights:
        shape = spec.weight_shape
        assert shape is not None and spec.out_channels is not None
        if params is None:
            if rng is None:
                raise ValueError("rng: needed to initialize weights when params is None")
            fan_in = int(np.prod(shape)) // (shape[3] if spec.op == "depthwise_conv2d"
                                             else shape[0])
            w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
            b = np.zeros(spec.out_channels)
        else:
            w, b = params[f"{spec.name}.weight"], params[f"{spec.name}.bias"]
        if spec.op == "conv2d":
            return Conv2D(spec.name, w, b, spec.stride, spec.padding, spec.activation)
        if spec.op == "depthwise_conv2d":
            return DepthwiseConv2D(spec.name, w, b, spec.stride, spec.padding, spec.activation)
        return Dense(spec.name, w, b, spec.activation)
    if spec.op in ("max_pool2d", "avg_pool2d"):
        return Pool2D(spec.name, spec.op[:3], spec.kernel, spec.stride, spec.padding)
    if spec.op == "add":
        return Add(spec.name, spec.activation)
    if spec.op == "concat":
        return Concat(spec.name)
    return Flatten(spec.name)


def from_network(network: Network, rng: np.random.Generator | None = None,
                 init: bool = False) -> Sequential:
    """Trainable model of a network: its weights, or fresh ones (``init=True``, drawn
    from ``rng`` layer by layer in order).  A chain gives a :class:`Sequential`, a graph
    (``add`` / ``concat`` / a layer's ``inputs``) a :class:`Graph`."""
    params = None if init or not network.params else network.params
    modules = [module_for(s, params, rng) for s in network.layers]
    if network.is_chain:
        return Sequential(modules)
    return Graph(modules, [network.inputs_of(i) for i in range(len(network.layers))])


# ----------------------------------------------------------------------------------------
# Loss and optimizers
# ----------------------------------------------------------------------------------------

def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``softmax(logits)`` and its gradient.

    Args:
        logits: float ``[N, classes]``.
        labels: int ``[N]`` in ``[0, classes)``.

    Returns:
        ``(loss, dlogits)``: the mean loss (nats) and float64 ``[N, classes]``.
    """
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = logits.shape[0]
    loss = float(-logp[np.arange(n), labels].mean())
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1.0
    return loss, grad / n


class SGD:
    """Stochastic gradient descent with momentum and L2 weight decay (weights only)."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 0.0) -> None:
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self._v: dict[str, np.ndarray] = {}

    def step(self, model: Sequential) -> None:
        for name, p, g in model.parameters():
            if self.weight_decay and name.endswith(".weight"):
                g = g + self.weight_decay * p
            v = self._v.setdefault(name, np.zeros_like(p))
            v *= self.momentum
            v -= self.lr * g
            p += v


class Adam:
    """Adam (Kingma & Ba) with optional L2 weight decay on weights."""

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.weight_decay = weight_decay
        self.t = 0
        self._m: dict[str, np.ndarray] = {}
        self._v: dict[str, np.ndarray] = {}

    def step(self, model: Sequential) -> None:
        self.t += 1
        c1 = 1.0 - self.beta1 ** self.t
        c2 = 1.0 - self.beta2 ** self.t
        for name, p, g in model.parameters():
            if self.weight_decay and name.endswith(".weight"):
                g = g + self.weight_decay * p
            m = self._m.setdefault(name, np.zeros_like(p))
            v = self._v.setdefault(name, np.zeros_like(p))
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)
