"""Broken input to ``python -m pymodel``, run as a user runs it (a subprocess): exit
status 2, one line on stderr that names the argument, no traceback, nothing written.
Ctrl-C: one line, status 130, and a message that says truthfully what was written."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pymodel import atomicio, cli
from pymodel.training import digits

REPO = Path(__file__).resolve().parents[1]
NET = str(digits.NETWORK_YAML)


def qmac(*argv: str, timeout: float = 120) -> tuple[int, str, str]:
    """``python -m pymodel argv`` in a subprocess: (status, stdout, stderr)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run([sys.executable, "-m", "pymodel", *argv], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def truncated(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def bit_flipped(src: Path, dst: Path) -> Path:
    data = bytearray(src.read_bytes())
    data[len(data) // 3] ^= 0x10          # inside an array's bytes: a CRC-32 mismatch
    dst.write_bytes(bytes(data))
    return dst


def one_line_error(result: tuple[int, str, str], status_expected: int = 2) -> str:
    """The one stderr line of a failed run (checks status, no traceback, one line)."""
    status, _, err = result
    assert status == status_expected, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture()
def broken(tmp_path: Path) -> dict[str, Path]:
    """A truncated artifact, bit-flipped weights, truncated statistics, bit-flipped data,
    int32 'float' weights."""
    art = tmp_path / "art"
    art.mkdir()
    shutil.copy(digits.INT8_ARTIFACT, art / "a.yaml")
    text = (art / "a.yaml").read_text().replace("digits_cnn_int8.npz", "a.npz")
    (art / "a.yaml").write_text(text)
    truncated(digits.INT8_ARTIFACT.with_suffix(".npz"), art / "a.npz")
    stats = tmp_path / "stats.npz"
    assert cli.main(["calibrate", NET, "--images", "16", "--out", str(stats),
                     "--no-progress"]) == 0
    x = np.zeros((16, 8, 8, 1))
    np.savez(tmp_path / "d.npz", x=x)
    w = dict(np.load(digits.MODEL_DIR / "digits_cnn.npz"))
    w["conv1.weight"] = np.round(w["conv1.weight"] * 100).astype(np.int32)
    np.savez(tmp_path / "w_int32.npz", **w)
    return {"artifact": art / "a.yaml",
            "weights": bit_flipped(digits.MODEL_DIR / "digits_cnn.npz", tmp_path / "w.npz"),
            "stats": truncated(stats, tmp_path / "stats_cut.npz"),
            "data": bit_flipped(tmp_path / "d.npz", tmp_path / "d_flip.npz"),
            "int32": tmp_path / "w_int32.npz"}


def test_broken_inputs_one_line_status_2(broken: dict[str, Path], tmp_path: Path):
    out = str(tmp_path / "q")
    cases = [
        (["eval", str(broken["artifact"])], "qmac eval: error: ",
         "a.npz is not a readable .npz (File is not a zip file)"),
        (["quantize", NET, "--weights", str(broken["weights"]), "--out", out],
         "qmac quantize: error: ", "w.npz: not a readable .npz (Bad CRC-32"),
        (["quantize", NET, "--stats", str(broken["stats"]), "--out", out],
         "qmac quantize: error: stats: ", "is not a readable .npz"),
        (["eval", NET, "--data", str(broken["data"])],
         "qmac eval: error: data: ", "is not a readable .npz (BadZipFile: Bad CRC-32"),
        (["quantize", NET, "--weights", str(broken["int32"]), "--out", out],
         "qmac quantize: error: ", "tensor 'conv1.weight' in "),
        (["quantize", NET, "--batch-size", "0", "--out", out],
         "python -m pymodel quantize: error: argument --batch-size: ", "0 must be a positive"),
        (["quantize", NET, "--layer-bits", "fc1=4,fc1=5", "--out", out],
         "qmac quantize: error: --layer-bits: ", "'fc1' is given twice (fc1=4 and fc1=5)"),
        (["report", "--out", "/sys/qmac-accuracy"],
         "qmac report: error: --out: cannot write to /sys", "Permission denied"),
    ]
    before = {p.name for p in tmp_path.rglob("*")}
    for argv, start, inside in cases:
        line = one_line_error(qmac(*argv, "--no-progress"))
        assert line.startswith(start) and inside in line, (argv, line)
    assert {p.name for p in tmp_path.rglob("*")} == before        # nothing written
    assert "float weights must have a floating dtype" in \
        one_line_error(qmac("quantize", NET, "--weights", str(broken["int32"]), "--out", out))


def test_read_only_output_is_refused_before_computing(tmp_path: Path):
    """The write check comes first: no data is even loaded (a missing network would
    otherwise be the error)."""
    line = one_line_error(qmac("quantize", str(tmp_path / "missing.yaml"), "--out",
                               "/sys/q"))
    assert line.startswith("qmac quantize: error: --out: cannot write to /sys"), line


def _loading_numpy(pid: int) -> bool:
    try:
        return "_multiarray_umath" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_ctrl_c_during_start_up_is_one_line():
    """SIGINT while the command line loads its libraries (numpy's extension is mapped:
    the interpreter is up and ``python -m pymodel`` is importing): one line, status 130,
    no traceback.  (A SIGINT before the interpreter has initialized is Python's own
    business.)"""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "pymodel", "demo", "--images", "2"],
                         cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.monotonic() + 60
    while not _loading_numpy(p.pid) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    if p.returncode == 0:           # the whole demo ran before the signal: nothing to see
        pytest.fail("the demo finished before SIGINT could be sent; cannot test start-up")
    line = one_line_error((p.returncode, out, err), 130)
    assert line.startswith("qmac") and "interrupted" in line, line


def test_ctrl_c_during_the_final_rename_says_the_files_were_written(capsys, tmp_path: Path,
                                                                      monkeypatch):
    """Ctrl-C while the artifact's files are renamed into place is held back until both
    are in place; the message then says they were written, and they are complete."""
    real_replace = os.replace

    def replace_with_ctrl_c(src, dst):
        os.kill(os.getpid(), signal.SIGINT)       # arrives during the rename
        real_replace(src, dst)

    monkeypatch.setattr(atomicio.os, "replace", replace_with_ctrl_c)
    status = cli.main(["quantize", NET, "--images", "16", "--out", str(tmp_path / "q"),
                       "--no-progress"])
    err = capsys.readouterr().err
    assert status == 130
    line = one_line_error((status, "", err), 130)
    assert line.startswith("qmac quantize: interrupted after the output was complete: "), line
    assert str(tmp_path / "q.yaml") in line and str(tmp_path / "q.npz") in line
    from pymodel.graph.artifact import load_artifact
    assert load_artifact(tmp_path / "q.yaml").name == "digits_cnn"   # complete, valid
    assert {p.name for p in tmp_path.iterdir()} == {"q.yaml", "q.npz"}


def test_each_subcommand_help_shows_only_its_own_examples(capsys):
    """The top-level help has every example; a subcommand's help only its own."""
    def help_of(*argv: str) -> str:
        with pytest.raises(SystemExit) as exc:
            cli.main([*argv, "--help"])
        assert exc.value.code == 0
        return capsys.readouterr().out
    top = help_of()
    for command in cli.COMMANDS:
        assert f"python -m pymodel {command} " in top, command
        text = help_of(command)
        examples = text[text.index("examples:"):]
        assert f"python -m pymodel {command} " in examples
        others = [c for c in cli.COMMANDS if c != command and f"python -m pymodel {c} " in examples]
        assert not others, (command, others)

