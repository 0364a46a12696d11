"""Simulation entry point behind ``make sim``.

``python -m tb.run``                 the main job (until the layer engine exists: a
                                     golden-model demo of the quantized network flow)
``python -m tb.run --test mac_array`` one testbench with its default parameters, waves on
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

import tb


def testbenches() -> list[str]:
    """Names ``<dut>`` of every ``tb/test_<dut>.py``."""
    return sorted(m.name[len("test_"):] for m in pkgutil.iter_modules(tb.__path__)
                  if m.name.startswith("test_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tb.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test", metavar="DUT",
                        help=f"run one testbench: {', '.join(testbenches()) or '(none yet)'}")
    parser.add_argument("--waves", action="store_true",
                        default=os.environ.get("QMAC_WAVES", "0") == "1",
                        help="dump FST waveforms under sim/ (default: $QMAC_WAVES)")
    parser.add_argument("--images", type=int, default=None,
                        help="number of test images for the network run")
    args = parser.parse_args(argv)
    if args.test:
        if args.test not in testbenches():
            parser.error(f"--test: unknown testbench {args.test!r}; "
                         f"choose from {', '.join(testbenches())}")
        module = importlib.import_module(f"tb.test_{args.test}")
        module.run(waves=args.waves)
        return 0
    from pymodel.cli import main as pymodel_main
    return pymodel_main(["demo"] + ([f"--images={args.images}"] if args.images else []))


if __name__ == "__main__":
    sys.exit(main())
