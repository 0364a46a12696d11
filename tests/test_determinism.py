"""Regenerating commands give the same bytes however often and with however many BLAS
threads they run (pymodel.threads); ``report`` writes to a build directory by default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from threadpoolctl import threadpool_info, threadpool_limits

from pymodel import cli
from pymodel.training import digits

REPO = Path(__file__).resolve().parents[1]


def test_every_command_runs_with_one_blas_thread(monkeypatch):
    """Whatever the caller's thread count (here 2), a command computes with one BLAS
    thread: OpenBLAS splits products differently with different thread counts."""
    seen: list[int] = []

    def probe(args) -> int:
        seen.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
        return 0

    monkeypatch.setitem(cli.COMMANDS, "demo", probe)
    with threadpool_limits(limits=2):
        assert cli.main(["demo"]) == 0
    assert seen and set(seen) == {1}, seen


def _qat(out: Path, threads: int) -> None:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    r = subprocess.run([sys.executable, "-m", "pymodel", "qat", str(digits.NETWORK_YAML),
                        "--weight-bits", "4", "--granularity", "per_tensor", "--epochs", "2",
                        "--freeze-epochs", "1", "--train-images", "320", "--out", str(out),
                        "--no-progress"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr


def test_qat_artifact_is_byte_identical_across_runs_and_thread_counts(tmp_path: Path):
    """Calibration, training and conversion: two runs, 1 and 4 BLAS threads, same bytes
    (the YAML names its own .npz, so both are written under the same name)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _qat(tmp_path / "a" / "q", 1)
    _qat(tmp_path / "b" / "q", 4)
    for name in ("q.yaml", "q.npz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_report_writes_to_a_build_directory_by_default():
    args = cli.build_parser().parse_args(["report"])
    assert args.out == Path("build/accuracy")
    makefile = (REPO / "Makefile").read_text()
    assert "OUT          ?= build/accuracy" in makefile
    assert "$(PY) -m pymodel report --out $(OUT)" in makefile
