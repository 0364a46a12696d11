"""Front ends: models that come from outside qmac.

- :mod:`pymodel.frontends.tflite_reader`  a ``.tflite`` flatbuffer as tensors, operators and
  options (read with the ``tflite`` schema package)
- :mod:`pymodel.frontends.tflite_import`  an int8 TFLite model as a qmac artifact (``qmac import``)
- :mod:`pymodel.frontends.oplist`         the operators of a ``.tflite`` file with their options
- :mod:`pymodel.frontends.runtimes`       run a ``.tflite`` model under the reference runtimes
  (LiteRT reference / optimized / XNNPACK kernels, TensorFlow Lite Micro), every tensor back
"""
