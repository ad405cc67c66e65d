"""benchmarks/gpu.py is run only when a session is lent a GPU: its --dry-run (tiny shapes, CPU) keeps
it working in between, and its exactness half is the same check the GPU run makes."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _gpu_script():
    spec = importlib.util.spec_from_file_location("lvsal_gpu_bench", ROOT / "benchmarks" / "gpu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_dry_run_writes_results_and_report(tmp_path):
    gpu = _gpu_script()
    assert gpu.main(["--dry-run", "--T", "6", "--out", str(tmp_path), "--skip", "dynamic"]) == 0
    res = json.loads((tmp_path / "gpu.json").read_text())
    ex = res["exactness"]
    assert len(ex) == 8 and all(v["max_abs_err"] < 1e-12 for v in ex.values())
    assert sum("kept graphs" in k for k in ex) == 2
    fresh = [v for k, v in ex.items() if "dynamic" not in k and "kept" not in k]
    assert len(fresh) == 3 and all(v["same_tokens_as_dynamic_loop"] for v in fresh)
    o = res["overhead"]
    assert "failed" not in o
    assert o["generate"]["tokens"] == o["SGRS k=5"]["tokens"] == 6
    assert o["SGRS k=5, graphs kept from the trace before"]["tokens"] == 6
    counts = o["launches_per_token"]
    assert counts["LocoRE beta=0.15 (generate)"] > counts["generate"] > 0
    md = (tmp_path / "gpu.md").read_text()
    assert "| SGRS k=5 |" in md and "per decode step" in md
    assert "LocoRE around generate: median of its 2 sample(s)" in md
    assert gpu.report(res) == md.splitlines()
