"""qmac golden model.

The integer arithmetic here *is* the specification of every integer the qmac RTL
produces.  It matches TFLite's reference int8 kernels (gemmlowp rounding) bit for bit.

Modules, one job each:

- :mod:`pymodel.rounding`    float -> integer rounding rules (half away from zero)
- :mod:`pymodel.fixedpoint`  int32 fixed-point requantization (gemmlowp / TFLite)
- :mod:`pymodel.qparams`     scales and zero points, quantize / dequantize
- :mod:`pymodel.gemm`        exact integer GEMM and ``im2col``
- :mod:`pymodel.layers`      quantized layers and their float references
- :mod:`pymodel.validate`    argument checking with clear errors
- :mod:`pymodel.histogram`, :mod:`pymodel.calibration`  streaming calibrators
- :mod:`pymodel.network`, :mod:`pymodel.schema`  float network YAML + weights, validation
- :mod:`pymodel.ptq`, :mod:`pymodel.artifact`, :mod:`pymodel.inference`  post-training
  quantization, the quantized-network artifact, integer inference of an artifact
- :mod:`pymodel.nn`, :mod:`pymodel.train`, :mod:`pymodel.digits`, :mod:`pymodel.datasets`
  float training of the demo network
- :mod:`pymodel.accuracy`, :mod:`pymodel.cli`  the accuracy study and the command line

The arithmetic contract is written out in ``docs/arithmetic.md``.
"""

__version__ = "0.1.0"
