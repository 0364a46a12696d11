"""qmac golden model.

The integer arithmetic here *is* the specification of every integer the qmac RTL
produces.  It matches TFLite's reference int8 kernels (gemmlowp rounding) bit for bit.

Subpackages, grouped by role (each module has one job):

- :mod:`pymodel.arithmetic`    rounding rules, int32 fixed-point requantization (gemmlowp /
  TFLite), scales and zero points, exact integer GEMM and ``im2col``
- :mod:`pymodel.ops`           quantized operators and their float references
- :mod:`pymodel.calibration`   streaming histograms and calibrators
- :mod:`pymodel.quantization`  PTQ, QAT and fake quantization, CLE, bias correction
- :mod:`pymodel.graph`         the float network YAML, the quantized-network artifact,
  integer inference of an artifact
- :mod:`pymodel.training`      float training and the demo digits network
- :mod:`pymodel.study`         the accuracy study (``make accuracy``)

Top-level modules: :mod:`pymodel.cli` (the command line), :mod:`pymodel.validate`
(argument checking), :mod:`pymodel.schema` (YAML checking), :mod:`pymodel.atomicio`
(atomic, reproducible output), :mod:`pymodel.datasets` (data sets).

The arithmetic contract is written out in ``docs/arithmetic.md``.
"""

__version__ = "0.1.0"
