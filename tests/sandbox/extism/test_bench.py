"""bench/extism_compare.py still runs (a few calls only: this checks it works, not how fast)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "extism_compare.py"


def test_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("extism_compare", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--rounds", "1", "--calls", "10", "--json"])
    assert json.loads(capsys.readouterr().out) == result
    assert set(result["per_call_us"]) == {"extism", "wasmq", "wasmq-public", "fresh-instance"}
    assert result["ratio_wasmq_to_extism"] > 0
