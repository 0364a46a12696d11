"""``make sim`` / ``python -m tb.run`` as a user runs it: one's own artifact and data,
the engine size, bad input stopped before the simulator starts (one line, status 2), a
failing run's report (message, ``make sim ... SEED=n``, a waveform view zoomed on the
failing cycle), Ctrl-C (one line, status 130), progress lines in logs, ``make help``."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pymodel import datasets
from pymodel.graph.artifact import load_artifact
from tb import failure, preflight, test_network
from tb.network import NetworkReport, format_report
from tb.test_qlayer_engine import DEFAULT_PARAMETERS

REPO = Path(__file__).resolve().parents[1]
INT8 = test_network.DEFAULT_ARTIFACT
QAT = test_network.MODEL_DIR / "digits_cnn_w4a8_qat.yaml"


def tb_run(*argv: str, env: dict | None = None, timeout: float = 300) -> tuple[int, str, str]:
    """``python -m tb.run argv`` in a subprocess: (status, stdout, stderr)."""
    e = dict(os.environ, OPENBLAS_NUM_THREADS="1", **(env or {}))
    e.pop("PYTEST_CURRENT_TEST", None)             # as a user runs it, not under pytest
    r = subprocess.run([sys.executable, "-m", "tb.run", *argv], cwd=REPO, env=e,
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


# -- checks before the simulator starts -----------------------------------------------

def test_engine_parameters_are_checked():
    assert preflight.engine_parameters(DEFAULT_PARAMETERS, {"ROWS": "4", "COLS": None}) == \
        dict(DEFAULT_PARAMETERS, ROWS=4)
    for over, msg in (({"ROWS": "abc"}, "ROWS / --rows: 'abc' is not an integer"),
                      ({"W_DEPTH": 0}, "W_DEPTH / --w-depth: 0 is not allowed"),
                      ({"DEPTH": 3}, "engine parameter 'DEPTH' is not one of")):
        with pytest.raises(ValueError, match=re.escape(msg)):
            preflight.engine_parameters(DEFAULT_PARAMETERS, over)


def test_every_layer_is_checked_against_the_engine():
    qnet = load_artifact(INT8)
    preflight.check_fits(qnet, DEFAULT_PARAMETERS)
    small = dict(DEFAULT_PARAMETERS, W_DEPTH=100)          # fc1 has K = 256 taps
    with pytest.raises(ValueError, match=re.escape(
            "layer 'fc1' (fully_connected, K=256 taps per output channel) does not fit the "
            "engine: one tile of output channels needs K=256 weight words but W_DEPTH=100; "
            "raise W_DEPTH to at least 256")):
        preflight.check_fits(qnet, small)
    # A_DEPTH and N_TILES_MAX only change how a layer is split, never whether it runs
    preflight.check_fits(qnet, dict(DEFAULT_PARAMETERS, A_DEPTH=1, N_TILES_MAX=1))


def test_data_is_checked_against_the_artifact_input(tmp_path: Path):
    qnet = load_artifact(INT8)
    d = preflight.load_data(None, qnet)
    assert d.x.shape == (540, 8, 8, 1) and d.y is not None
    other = dataclasses.replace(qnet, input_shape=(6, 6, 1))   # not the digits' shape
    with pytest.raises(ValueError, match=re.escape(
            "DATA / --data: digits test split holds an array of shape (540, 8, 8, 1); "
            "artifact 'digits_cnn' takes images of shape (6, 6, 1)")):
        preflight.load_data(None, other)
    np.save(tmp_path / "one.npy", d.x[0])                        # one image, no batch axis
    assert preflight.load_data(tmp_path / "one.npy", qnet).x.shape == (1, 8, 8, 1)
    np.savez(tmp_path / "xy.npz", x=d.x[:3], y=d.y[:2])
    with pytest.raises(ValueError, match=r"y has shape \(2,\)"):
        preflight.load_data(tmp_path / "xy.npz", qnet)
    (tmp_path / "cut.npz").write_bytes((tmp_path / "xy.npz").read_bytes()[:100])
    with pytest.raises(ValueError, match="is not a readable .npz"):
        preflight.load_data(tmp_path / "cut.npz", qnet)


def test_the_float_column_is_the_artifacts_own_network(tmp_path: Path):
    net, what = preflight.float_network(load_artifact(INT8), INT8)
    assert net is not None and what == "digits_cnn.yaml"
    net, what = preflight.float_network(load_artifact(QAT), QAT)
    assert net is not None and what == "digits_cnn.yaml (before QAT fine-tuning)"
    # an artifact copied away from its float network has none: say so, do not use digits'
    (tmp_path / "a.yaml").write_text(INT8.read_text().replace(
        "digits_cnn_int8.npz", str(INT8.with_suffix(".npz"))))
    net, what = preflight.float_network(load_artifact(tmp_path / "a.yaml"), tmp_path / "a.yaml")
    assert net is None and "is not beside the artifact" in what


def test_report_without_float_network_or_labels_says_so():
    rep = NetworkReport(network="n", images=2, engine=dict(DEFAULT_PARAMETERS),
                        rtl_pred=[1, 2], golden_pred=[1, 2], float_source="no float network",
                        data_source="x.npy")
    text = format_report(rep)
    assert "RTL predictions == float model -  (no float network)" in text
    assert "RTL predictions == label       -  (the data has no labels)" in text
    assert "images                         2  (x.npy)" in text


@pytest.mark.parametrize("argv, env, first", [
    ([], {"QMAC_WAVES": "yes"}, "qmac sim: error: WAVES: 'yes' is not allowed; use WAVES=1"),
    (["--w-depth", "100"], {}, "qmac sim: error: layer 'fc1' (fully_connected, K=256 taps"),
    (["--rows", "0"], {}, "qmac sim: error: ROWS / --rows: 0 is not allowed"),
    (["--data", "{tmp}/wrong.npy"], {}, "qmac sim: error: DATA / --data: "),
    (["--images", "9", "--data", "{tmp}/three.npy"], {},
     "qmac sim: error: IMAGES / --images: 9 exceeds the 3 images of"),
    (["--test", "nosuch"], {}, "qmac sim: error: --test: unknown testbench 'nosuch'"),
])
def test_bad_input_is_one_line_before_simulating(argv, env, first, tmp_path: Path):
    np.save(tmp_path / "wrong.npy", np.zeros((2, 28, 28, 1)))
    np.save(tmp_path / "three.npy", datasets.digits("test").x[:3])
    status, out, err = tb_run(*[a.format(tmp=tmp_path) for a in argv], env=env)
    assert status == 2, err
    assert err.splitlines()[0].startswith(first), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err + out
    assert "[qmac]" not in out                       # nothing was built or simulated


@pytest.mark.rtl
def test_own_network_and_data_on_the_rtl(tmp_path: Path, rng):
    """Bring your own network: a 6x6 input CNN, quantized with the command line, run on a
    4x8 engine with one's own unlabelled images; without DATA= it is refused before the
    simulator starts (the digits do not fit its input)."""
    import yaml
    net = {"name": "mine", "weights": "mine.npz", "input": {"shape": [6, 6, 1]},
           "layers": [{"name": "c1", "op": "conv2d", "filters": 4, "kernel": 3, "stride": 1,
                       "padding": "same", "activation": "relu", "output_shape": [6, 6, 4]},
                      {"name": "flat", "op": "flatten", "output_shape": [144]},
                      {"name": "fc", "op": "fully_connected", "units": 3,
                       "output_shape": [3]}]}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(net))
    np.savez(tmp_path / "mine.npz", **{
        "c1.weight": rng.normal(0, 0.5, (4, 3, 3, 1)), "c1.bias": rng.normal(0, 0.1, 4),
        "fc.weight": rng.normal(0, 0.2, (3, 144)), "fc.bias": rng.normal(0, 0.1, 3)})
    np.savez(tmp_path / "calib.npz", x=rng.uniform(0, 1, (32, 6, 6, 1)))
    np.save(tmp_path / "test.npy", rng.uniform(0, 1, (3, 6, 6, 1)))
    r = subprocess.run([sys.executable, "-m", "pymodel", "quantize", str(tmp_path / "mine.yaml"),
                        "--data", str(tmp_path / "calib.npz"), "--out", str(tmp_path / "q"),
                        "--no-progress"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    art = str(tmp_path / "q.yaml")
    status, out, err = tb_run("--artifact", art)
    assert status == 2 and err.startswith(
        "qmac sim: error: DATA / --data: digits test split holds an array of shape "
        "(540, 8, 8, 1); artifact 'mine' takes images of shape (6, 6, 1)"), err
    status, out, err = tb_run("--artifact", art, "--data", str(tmp_path / "test.npy"),
                              "--rows", "4")
    assert status == 0, out + err
    assert out.splitlines()[0].startswith("[qmac] network-q ROWS4_COLS8")
    assert "qmac: mine on qmac_top (AXI4-Lite + AXI4-Stream; engine ROWS=4 x COLS=8 MAC array" in out
    assert "images                         3  (" in out                   # all 3 images
    assert "RTL predictions == golden      3/3" in out
    assert "RTL predictions == float model " in out and "(mine.yaml)" in out
    assert "RTL predictions == label       -  (the data has no labels)" in out


# -- a failing run and Ctrl-C ---------------------------------------------------------

@pytest.mark.rtl
def test_a_failing_run_reports_message_reproduction_and_zoomed_waveform(tmp_path: Path):
    """A mismatch injected into the golden side (QMAC_NET_FAULT) at conv1, row 3,
    channel 5: the scoreboard's message, not a traceback; the make line that repeats
    the run; a save file whose marker is on the failing cycle."""
    status, out, err = tb_run("--images", "1", "--rows", "4",
                              env={"QMAC_NET_FAULT": "conv1:3:5", "QMAC_SEED": "123"})
    assert status == 1, out + err
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    first = next(i for i, l in enumerate(lines) if l.startswith("qmac sim: FAILED:"))
    assert "MISMATCH in layer 'conv1'" in lines[first] and "row 3, column 5" in lines[first]
    assert "reproduce: make sim IMAGES=1 ROWS=4 SEED=123" in lines
    wave = next(l for l in lines if l.startswith("waveform: gtkwave "))
    cycle = int(re.search(r"cycle (\d+):", lines[first]).group(1))
    assert f"opens on the failing cycle {cycle}: marker A at {cycle * 10} ns" in wave
    fst, gtkw = (REPO / p for p in wave.split()[2:4])
    assert fst.is_file() and gtkw.is_file()
    text = gtkw.read_text()
    marker = next(l for l in text.splitlines() if l.startswith("*")).split()
    assert marker[1] == marker[2] == str(cycle * 10_000)        # ps: primary marker and A
    start = int(re.search(r"^\[timestart\] (\d+)$", text, re.M).group(1))
    assert start == (cycle - failure.LEAD_CYCLES) * 10_000
    assert f'[dumpfile] "{fst}"' in text


def _simulator_running(pid: int) -> bool:
    """A vvp process below ``pid`` (the simulator has started)."""
    out = subprocess.run(["ps", "-o", "pid=,ppid=,comm=", "-e"], capture_output=True,
                         text=True).stdout
    rows = [l.split() for l in out.splitlines() if len(l.split()) == 3]
    children = {int(p): int(pp) for p, pp, _ in rows}
    for p, pp, comm in rows:
        if comm.startswith("vvp"):
            q = int(p)
            while q in children and q != pid:
                q = children[q]
            if q == pid:
                return True
    return False


@pytest.mark.rtl
def test_ctrl_c_during_the_simulation_is_one_line(tmp_path: Path):
    """SIGINT to the whole process group (what a terminal's Ctrl-C does) once the
    simulator runs: status 130, one line, no traceback from the host or the simulator."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    env.pop("PYTEST_CURRENT_TEST", None)
    p = subprocess.Popen([sys.executable, "-m", "tb.run", "--images", "50", "--rows", "2"],
                         cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not _simulator_running(p.pid) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)                                      # inside cocotb, mid-simulation
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, out + err
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err
    assert err.strip().splitlines()[-1] == ("qmac sim: interrupted (Ctrl-C); the simulator "
                                            "was stopped, no report")


# -- waves, progress, make help ---------------------------------------------------------

def test_waves_for_one_testbench_prints_the_gtkwave_command(capsys, monkeypatch,
                                                             tmp_path: Path):
    from tb import kit, run, test_requant
    fst = tmp_path / "build" / "requant-default" / "requant_pipeline.fst"

    def fake_run(waves: bool) -> None:                  # what the testbench leaves behind
        assert waves
        assert os.environ["QMAC_REPRODUCE"] == "make sim TEST=requant WAVES=1 SEED=77"
        fst.parent.mkdir(parents=True)
        fst.write_bytes(b"")

    monkeypatch.setattr(kit, "SIM_DIR", tmp_path)
    (tmp_path / "requant.gtkw").write_text("")
    monkeypatch.setattr(test_requant, "run", fake_run)
    monkeypatch.setenv("QMAC_WAVES", "1")
    monkeypatch.setenv("QMAC_SEED", "77")
    monkeypatch.setenv("QMAC_REPRODUCE", "")           # restored afterwards
    assert run.main(["--test", "requant"]) == 0
    out = capsys.readouterr().out
    assert f"open with: gtkwave {fst} {tmp_path / 'requant.gtkw'}" in out


class _FakeEnv:
    rows = cols = 8
    array_beats = 0
    dut = None


def test_progress_moves_within_a_layer_and_prints_lines_to_a_log():
    qnet = load_artifact(INT8)
    env = _FakeEnv()
    log = io.StringIO()                                  # not a terminal
    bar = test_network.Progress(qnet, 10, env, stream=log)
    conv1, conv2 = (l.macs * 10 for l in qnet.layers[:2])
    env.array_beats = conv1 // 64 // 2                   # half of conv1 done
    bar.sample()
    assert 0 < bar.shown < conv1
    bar.layer_done(conv1)
    env.array_beats += conv2 // 64                        # all of conv2, before its callback
    bar.sample()
    assert bar.shown == conv1 + conv2
    text = log.getvalue()
    assert "\r" not in text
    assert text.splitlines()[0].startswith("[qmac] digits_cnn on RTL:  10 % of 315,520 MACs")
    assert len(text.splitlines()) == int(100 * (conv1 + conv2) / bar.total) // 10


def test_make_help_and_readme_list_every_variable_and_command():
    makefile = (REPO / "Makefile").read_text()
    variables = set(re.findall(r"^([A-Z_]+)\s*\?=", makefile, re.M)) | {"MODEL"}
    variables -= {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"}
    out = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True,
                         env=dict(os.environ, MAKEFLAGS="")).stdout
    readme = (REPO / "README.md").read_text()
    for v in sorted(variables):
        assert re.search(rf"^\s+{v}=", out, re.M), f"make help does not list {v}="
        assert f"{v}=" in readme, f"README does not mention {v}="
    targets = re.findall(r"^([a-z-]+):.*## ", makefile, re.M)
    for t in targets:
        assert re.search(rf"^{t}\s", out, re.M)
        if t != "help":
            assert f"make {t}" in readme, f"README does not mention make {t}"
    from pymodel.cli import COMMANDS
    for c in COMMANDS:
        assert re.search(rf"`(?:python -m pymodel|\.venv/bin/qmac|qmac) {c}\b", readme), c
