"""`wasmq bench` (bench/compare.py) runs end to end with tiny counts and reports every phase, ratio and
in-process figure. The figures themselves are not judged here: these machines are shared and noisy; the
benchmark prints them side by side."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_bench_reports_every_phase_ratio_and_in_process_figure(redis_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMQ_")}
    env["WASMQ_REDIS_URL"] = redis_url  # the run's own queues on the test Redis
    cmd = [
        sys.executable, str(ROOT / "bench" / "compare.py"), "--quick", "--json", "--rounds", "1",
        "--singles", "40", "--items", "2000", "--chunk", "100", "--latency", "5", "--leak-calls", "500",
        "--batch-lines", "3000", "--batch-big-lines", "6000",
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)  # exactly one JSON object on stdout

    phases = result["queue"]["phases"]
    assert set(phases) == {"a1", "a2", "b", "b0", "c"}
    for key, phase in phases.items():
        assert phase["items_per_s"] > 0 and phase["peak_rss_mb"] > 0, (key, phase)
        assert 0 < phase["p50_ms"] <= phase["p99_ms"], (key, phase)
        assert phase["items_per_message"] == (100 if key in ("a2", "c") else 1)
    assert set(result["ratios"]) == {"b/a1", "c/a2", "b0/a1"}
    assert all(v > 0 and math.isfinite(v) for v in result["ratios"].values())

    e = result["file_batch"]  # the file of names to JSONL: plain Celery chunks, wasmq batch, a larger wasmq batch
    assert set(e["runs"]) == {"e-plain", "e-wasmq", "e-wasmq-big"}
    for key, run in e["runs"].items():
        assert run["exit"] == 0 and run["items_per_s"] > 0 and run["peak_rss_mb"] > 0, (key, run)
        assert run["rows"] == (6000 if key == "e-wasmq-big" else 3000), (key, run)
    assert e["runs"]["e-wasmq"]["single_job_s"]["n"] >= 0 and e["ratio_wasmq_to_plain"] > 0

    d = result["in_process"]
    assert d["micro"]["sandbox_us"] > 0 and d["micro"]["raw_us"] > 0 and d["micro"]["ratio"] > 0
    assert set(d["cold_start"]) == {"with_cache", "without_cache"}
    for cold in d["cold_start"].values():
        assert cold["setup_to_first_call_ms"] >= cold["first_call_ms"] > 0
    assert d["leak"]["calls"] == 500 and d["leak"]["at_end_mb"] > 0
