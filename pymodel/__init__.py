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

The arithmetic contract is written out in ``docs/arithmetic.md``.
"""

__version__ = "0.1.0"
