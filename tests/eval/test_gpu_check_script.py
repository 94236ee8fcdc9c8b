"""scripts/gpu_check.py --dry: the device run's steps (environment, bench passes with offload, table, targets) on
the CPU with the tiny shape, so the one GPU call is known to run to the end."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_dry_run_writes_every_output(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--dry", "--skip-tests",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = json.loads((tmp_path / "env.json").read_text())
    assert env["cuda"] in (True, False) and env["torch"]
    results = json.loads((tmp_path / "bench.json").read_text())["results"]
    cells = {(r["method"], r["length"]) for r in results if "error" not in r}
    assert {("full", 192), ("longheads", 192), ("longheads[offload=cpu]", 192), ("full", 160)} <= cells
    assert "| longheads[offload=cpu] | 192 |" in (tmp_path / "bench.md").read_text()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [t["met"] for t in summary["targets"]] == [None, None, None]  # no verdicts from a dry run
    assert all(t["value"] is not None for t in summary["targets"])
