"""The register map's generated files (docs/registers.md, rtl/qmac_regs.vh, tb/qmac_regs.py)
are up to date with rtl/regs.yaml, and a malformed map is refused with one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GEN = ROOT / "scripts" / "gen_regs.py"


def test_generated_files_up_to_date() -> None:
    r = subprocess.run([sys.executable, str(GEN), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_generation_is_reproducible(tmp_path: Path) -> None:
    for out in (tmp_path / "a", tmp_path / "b"):
        subprocess.run([sys.executable, str(GEN), "--out", str(out)], check=True)
    for rel in ("docs/registers.md", "rtl/qmac_regs.vh", "tb/qmac_regs.py"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
        assert (tmp_path / "a" / rel).read_bytes() == (ROOT / rel).read_bytes()


def test_python_constants_match_yaml() -> None:
    import yaml

    from tb import qmac_regs
    spec = yaml.safe_load((ROOT / "rtl" / "regs.yaml").read_text())
    for reg in spec["registers"]:
        assert qmac_regs.OFFSET[reg["name"]] == reg["offset"]
        assert getattr(qmac_regs, reg["name"]) == reg["offset"]


@pytest.mark.parametrize("edit, message", [
    (("offset: 0x14", "offset: 0x10"), "offset 0x10 is also CTRL"),
    (("offset: 0x14", "offset: 0x15"), "offset = 21; must be a multiple of 4"),
    (("access: w1c", "access: rc"), "access = 'rc'"),
    (("bits: [15, 8]", "bits: [40, 8]"), "bits = [40, 8]"),
])
def test_bad_map_is_refused(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    text = (ROOT / "rtl" / "regs.yaml").read_text().replace(*edit, 1)
    src = tmp_path / "regs.yaml"
    src.write_text(text)
    r = subprocess.run([sys.executable, str(GEN), "--source", str(src), "--out", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "docs").exists()            # nothing half-written
