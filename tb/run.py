"""Simulation entry point behind ``make sim``.

``python -m tb.run``                   the main job: the digits CNN end to end on the RTL
                                       layer engine, every layer checked against the
                                       golden model (``--images N``, ``--waves``,
                                       ``--artifact PATH``)
``python -m tb.run --test mac_array``  one testbench with its default parameters
                                       (add ``--waves`` for an FST under sim/build/)
``--sim verilator`` (or ``$QMAC_SIM``)  the network job in bulk on Verilator
                                       (``tb/bulk.py``); a testbench on cocotb + Verilator
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
    parser.add_argument("--images", type=int, default=16,
                        help="number of digits test images for the network run (default 16)")
    parser.add_argument("--artifact", default=None,
                        help="quantized-network artifact YAML (default: the shipped INT8 "
                             "digits CNN, models/digits/digits_cnn_int8.yaml)")
    parser.add_argument("--model", default=None,
                        help="a .tflite model (models/tflite/*.tflite): every conv / FC / "
                             "depthwise / pool / MEAN / ADD / SUB / MUL layer on its RTL unit "
                             "(tb/test_units_network.py); --images of its stored test images "
                             "(default 1)")
    parser.add_argument("--sim", default=None,
                        help="simulator: icarus (default) or verilator (default: $QMAC_SIM)")
    args = parser.parse_args(argv)
    from tb.kit.verilator import SIM_ENV, simulator
    try:
        sim = simulator(args.sim)
    except ValueError as exc:
        print(f"qmac: error: {exc}", file=sys.stderr)
        return 2
    os.environ[SIM_ENV] = sim               # the testbenches' runner reads it
    if args.test and args.test != "network":   # network: the main job below
        if args.test not in testbenches():
            parser.error(f"--test: unknown testbench {args.test!r}; "
                         f"choose from {', '.join(testbenches())}")
        from tb import kit
        module = importlib.import_module(f"tb.test_{args.test}")
        try:
            module.run(waves=args.waves)
        except kit.TestbenchFailed as exc:
            print(f"\nqmac: FAILED: {exc}", file=sys.stderr)
            return 1
        return 0
    from tb import kit, test_network
    if args.model:
        from tb import test_units_network
        images = args.images if "--images" in (argv if argv is not None else sys.argv) else 1
        try:
            return test_units_network.main(args.model, images=images, waves=args.waves)
        except ValueError as exc:
            print(f"qmac: error: {exc}", file=sys.stderr)
            return 2
        except kit.TestbenchFailed as exc:
            print(f"\nqmac: FAILED: {exc}", file=sys.stderr)
            return 1
    if sim == "verilator":
        from tb import bulk
        try:
            return bulk.main(images=args.images, waves=args.waves, artifact=args.artifact)
        except kit.TestbenchFailed as exc:
            print(f"\nqmac: FAILED: {exc}", file=sys.stderr)
            return 1
        except (ValueError, FileNotFoundError) as exc:
            print(f"qmac: error: {exc}", file=sys.stderr)
            return 2
    try:
        return test_network.main(images=args.images, waves=args.waves,
                                 artifact=args.artifact or test_network.DEFAULT_ARTIFACT)
    except kit.TestbenchFailed as exc:
        print(f"\nqmac: FAILED: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:        # bad --images / --artifact: one clear line
        print(f"qmac: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
