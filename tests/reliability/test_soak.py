"""bench/soak runs end to end (a short soak on the in-process engine) and finds nothing wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_soak_prints_its_table_and_nothing_is_lost(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "bench", "soak", "--engine", "local", "--jobs", "100", "--burst", "60",
         "--kills", "2", "-o", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stdout.splitlines()[-1] + "\n" + out.stderr[-3000:]
    for line in ("| jobs submitted |", "| lost | 0 |", "| duplicated | 0 |", "| faults injected / survived |",
                 "| hostile inputs tried / refused |", "| daemon RSS growth per 100 jobs |"):
        assert line in out.stdout, line
    [result] = json.loads((tmp_path / "soak.json").read_text())["results"]
    assert result["submitted"] >= 100 and result["completed"] == result["submitted"]
    assert all(f["survived"] for f in result["faults"]) and all(h["refused"] for h in result["hostile"])
    assert result["integrity"] == "ok"
