"""Front ends: models that come from outside qmac.

- :mod:`pymodel.frontends.oplist`    the operators of a ``.tflite`` file with their options
  (read with the ``tflite`` schema package)
- :mod:`pymodel.frontends.runtimes`  run a ``.tflite`` model under the reference runtimes
  (LiteRT reference / optimized / XNNPACK kernels, TensorFlow Lite Micro) and return every tensor
"""
