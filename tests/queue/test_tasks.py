"""Chunk results as the worker builds them, and the `wasmq bench` command's guards."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from worker.cli import bench
from worker.errors import UsageError
from worker.outcome import chunk_entries, item_entry
from worker.sandbox import Sandbox


def test_chunk_entries_match_item_entries(sandbox: Sandbox) -> None:
    results = sandbox.call_many("greeting", "greet", ["a", 3, "b", "c"])  # type: ignore[list-item]
    entries = chunk_entries(results)
    assert entries == [item_entry(r) for r in results]
    assert [e["ok"] for e in entries] == [True, False, True, True]
    assert entries[0]["usage"] is entries[2]["usage"]  # one batch call, one usage dict


def _args(**changes: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "--quick"])
    for key, value in changes.items():
        setattr(args, key, value)
    return args


def test_bench_needs_a_checkout(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="source checkout"):
        bench.run(_args(), script=tmp_path / "missing.py")


def test_bench_refuses_a_bad_chunk_size() -> None:
    with pytest.raises(UsageError, match="--chunk"):
        bench.run(_args(chunk=0))
