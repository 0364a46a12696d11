"""Simulation entry point behind ``make sim``.

``python -m tb.run``                   the main job: the digits CNN end to end on the RTL
                                       layer engine, every layer checked against the
                                       golden model (``--images N``, ``--waves``,
                                       ``--artifact PATH``, ``--data FILE``, engine size
                                       ``--rows`` ``--cols`` ``--a-depth`` ``--w-depth``
                                       ``--n-tiles-max``)
``python -m tb.run --test mac_array``  one testbench with its default parameters
                                       (add ``--waves`` for an FST under sim/build/)
``--sim verilator`` (or ``$QMAC_SIM``)  the network job in bulk on Verilator
                                       (``tb/bulk.py``); a testbench on cocotb + Verilator

``make sim`` passes its variables here (``ARTIFACT=`` ``DATA=`` ``IMAGES=`` ``ROWS=``
... ``WAVES=`` ``TEST=`` ``SEED=``; ``make help`` lists them).  Bad input -- an unknown
testbench, ``WAVES=yes``, data of the wrong shape, a layer the engine cannot hold -- is
one ``qmac sim: error:`` line and exit status 2, found before the simulator starts; a
failing run is exit status 1; Ctrl-C is one line and exit status 130 (128 + SIGINT).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path
from typing import NoReturn

import tb

ENGINE_OPTIONS = (("--rows", "ROWS"), ("--cols", "COLS"), ("--a-depth", "A_DEPTH"),
                  ("--w-depth", "W_DEPTH"), ("--n-tiles-max", "N_TILES_MAX"))


class _Parser(argparse.ArgumentParser):
    """One-line usage errors, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"qmac sim: error: {message} (see python -m tb.run --help)\n")


def waves_from_env() -> bool:
    """``$QMAC_WAVES`` (``make ... WAVES=``): ``0`` / empty or ``1``; anything else is an
    error rather than a silent no (``WAVES=yes`` used to dump waves and say nothing)."""
    value = os.environ.get("QMAC_WAVES", "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"WAVES: {value!r} is not allowed; use WAVES=1 (dump an FST "
                         "waveform) or WAVES=0 (default)")
    return value == "1"


def latest_waveform(since: float) -> Path | None:
    """The newest ``sim/build/*/*.fst`` written after ``since`` (``time.time()``)."""
    from tb import kit
    fsts = [p for p in (kit.SIM_DIR / "build").glob("*/*.fst") if p.stat().st_mtime >= since]
    return max(fsts, key=lambda p: p.stat().st_mtime) if fsts else None


def _shown(path: Path) -> Path:
    from tb import kit
    try:
        return path.resolve().relative_to(kit.REPO_ROOT)
    except ValueError:
        return path


def make_sim_line(args: argparse.Namespace, seed: int) -> str:
    """The ``make sim ...`` command that repeats this network run exactly: every variable
    that was given, the number of images, and the session seed (``SEED=`` sets
    ``QMAC_SEED``, from which the simulation seed is derived)."""
    parts = ["make sim"]
    for var, value in (("ARTIFACT", args.artifact), ("MODEL", getattr(args, "model", None)),
                       ("DATA", args.data)):
        if value is not None:
            parts.append(f"{var}={value}")
    if args.images is not None:
        parts.append(f"IMAGES={args.images}")
    parts += [f"{name}={getattr(args, name)}" for _, name in ENGINE_OPTIONS
              if getattr(args, name) is not None]
    if args.waves:
        parts.append("WAVES=1")
    parts.append(f"SEED={seed}")
    return " ".join(parts)


def testbenches() -> list[str]:
    """Names ``<dut>`` of every ``tb/test_<dut>.py``."""
    return sorted(m.name[len("test_"):] for m in pkgutil.iter_modules(tb.__path__)
                  if m.name.startswith("test_"))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``make sim``; returns the exit status (see the module docstring)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("qmac sim: interrupted (Ctrl-C); the simulator was stopped, no report",
              file=sys.stderr)
        return 130
    except ValueError as exc:        # bad input: one clear line, before any simulation
        print(f"qmac sim: error: {exc}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    parser = _Parser(prog="python -m tb.run", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test", metavar="DUT",
                        help=f"run one testbench: {', '.join(testbenches()) or '(none yet)'}")
    parser.add_argument("--waves", action="store_true", default=None,
                        help="dump FST waveforms under sim/ (default: $QMAC_WAVES, 0 or 1)")
    parser.add_argument("--images", type=int, default=None,
                        help="number of images for the network run (default 16, or all "
                             "of --data if it holds fewer)")
    parser.add_argument("--artifact", default=None,
                        help="quantized-network artifact YAML (default: the shipped INT8 "
                             "digits CNN, models/digits/digits_cnn_int8.yaml)")
    parser.add_argument("--model", default=None,
                        help="a .tflite model (models/tflite/*.tflite): every conv / FC / "
                             "depthwise / pool / MEAN / ADD / SUB / MUL layer on its unit inside "
                             "qmac_top, through its AXI interfaces (tb/test_network.py); --images "
                             "of its stored test images "
                             "(default 1)")
    parser.add_argument("--sim", default=None,
                        help="simulator: icarus (default) or verilator (default: $QMAC_SIM)")
    parser.add_argument("--data", default=None, metavar="FILE",
                        help="float images [N, *input shape] as .npy (x) or .npz (x, "
                             "optional y labels) (default: the digits test split)")
    for opt, name in ENGINE_OPTIONS:
        parser.add_argument(opt, dest=name, default=None, metavar="N",
                            help=f"engine parameter {name} (default: the engine's)")
    args = parser.parse_args(argv)
    if args.waves is None:
        args.waves = waves_from_env()
    from tb.kit.verilator import SIM_ENV, simulator
    try:
        sim = simulator(args.sim)
    except ValueError as exc:
        print(f"qmac sim: error: {exc}", file=sys.stderr)
        return 2
    os.environ[SIM_ENV] = sim               # the testbenches' runner reads it
    if args.test and args.test != "network":   # network: the main job below
        if args.test not in testbenches():
            parser.error(f"--test: unknown testbench {args.test!r}; "
                         f"choose from {', '.join(testbenches())}")
        network_only = [opt for opt, name in [("--images", "images"), ("--artifact",
                        "artifact"), ("--data", "data")] + list(ENGINE_OPTIONS)
                        if getattr(args, name) is not None]
        if network_only:
            raise ValueError(f"{', '.join(network_only)}: only for the network run, not "
                             f"--test {args.test} (make sim without TEST=)")
        from tb import kit
        module = importlib.import_module(f"tb.test_{args.test}")
        start = time.time()
        again = (f"make sim TEST={args.test}{' WAVES=1' if args.waves else ''} "
                 f"SEED={kit.session_seed()}")
        os.environ["QMAC_REPRODUCE"] = again           # the runner prints it with the seed
        try:
            module.run(waves=args.waves)
        except kit.TestbenchFailed as exc:
            print(f"\nqmac sim: FAILED: {exc}\nreproduce: {again}", file=sys.stderr)
            return 1
        fst = latest_waveform(start - 1.0) if args.waves else None  # coarse mtimes
        if fst is not None:
            save = kit.SIM_DIR / f"{args.test}.gtkw"
            print(f"\nwaveform: {_shown(fst)}\nopen with: gtkwave {_shown(fst)}"
                  + (f" {_shown(save)}" if save.is_file() else ""))
        return 0
    from tb import kit, test_network
    if args.model:
        # the imported model through qmac_top's AXI interfaces, every op on its unit
        # (tb/test_units_network.py keeps the three units driven directly, for tests)
        images = 1 if args.images is None else args.images
        engine = {name: getattr(args, name) for _, name in ENGINE_OPTIONS}
        try:
            if sim == "verilator":           # bulk: the units' C++ harnesses (no AXI top)
                from tb import bulk_units
                return bulk_units.main(args.model, images=images, waves=args.waves)
            return test_network.main(images=images, waves=args.waves, model=args.model,
                                     parameters=engine,
                                     reproduce=make_sim_line(args, kit.session_seed()))
        except ValueError as exc:
            print(f"qmac sim: error: {exc}", file=sys.stderr)
            return 2
        except kit.TestbenchFailed as exc:
            print(f"\nqmac sim: FAILED: {exc}", file=sys.stderr)
            return 1
    if sim == "verilator":
        from tb import bulk
        try:
            return bulk.main(images=16 if args.images is None else args.images, waves=args.waves,
                             artifact=args.artifact or test_network.DEFAULT_ARTIFACT)
        except kit.TestbenchFailed as exc:
            print(f"\nqmac sim: FAILED: {exc}", file=sys.stderr)
            return 1
        except (ValueError, FileNotFoundError) as exc:
            print(f"qmac sim: error: {exc}", file=sys.stderr)
            return 2
    engine = {name: getattr(args, name) for _, name in ENGINE_OPTIONS}
    try:
        return test_network.main(images=args.images, waves=args.waves,
                                 artifact=args.artifact or test_network.DEFAULT_ARTIFACT,
                                 data=args.data, parameters=engine,
                                 reproduce=make_sim_line(args, kit.session_seed()))
    except kit.TestbenchFailed as exc:
        print(f"\nqmac sim: FAILED: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
