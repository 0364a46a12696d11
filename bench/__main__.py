"""Run every benchmark section: each ``bench/bench_*.py`` module's ``main()``.

Usage: ``python -m bench [section ...]`` (section = module name without ``bench_``).
Every figure is printed beside a baseline measured in the same process.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time

import bench


def sections() -> list[str]:
    """Names of the benchmark sections, in alphabetical order."""
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(bench.__path__)
                  if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", nargs="*", help=f"sections to run (default: all of "
                                                   f"{', '.join(sections())})")
    args = parser.parse_args(argv)
    chosen = args.section or sections()
    unknown = sorted(set(chosen) - set(sections()))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; "
                     f"choose from {', '.join(sections())}")
    for name in chosen:
        print(f"\n=== {name} " + "=" * (70 - len(name)))
        t0 = time.perf_counter()
        importlib.import_module(f"bench.bench_{name}").main()
        print(f"--- {name}: {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
