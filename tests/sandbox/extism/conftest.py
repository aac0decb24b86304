"""Fixtures for the Extism kernel host: one engine and ticker per module, both runner paths, the plugins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from worker.sandbox.engine import EpochTicker, make_engine
from worker.sandbox.extism import ExtismPlugin, ExtismRunner, load_plugin

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "corpora" / "extism"
GREETING = ROOT / "modules" / "greeting_extism" / "greeting_extism.wasm"
ABUSE_EXPORTS = (
    "load_unknown store_unknown load_past_end use_after_free output_bogus output_past_end output_huge_length "
    "length_unknown free_unknown input_past_end error_bogus config_bogus http http_nested var_roundtrip var_read "
    "var_huge "
    "alloc_huge alloc_forever alloc_free_forever log_flood rc_seven error_and_rc_zero invalid_utf8 "
    "oversize_output spin grow_memory no_rc"
).split()
LIMITS: dict[str, Any] = {
    "fuel": 50_000_000,
    "timeout_ms": 2_000,
    "memory_bytes": 16 * 1024 * 1024,
    "max_output_bytes": 1024 * 1024,
}


@pytest.fixture(scope="module")
def engine() -> wasmtime.Engine:
    return make_engine()


@pytest.fixture(scope="module")
def ticker(engine: wasmtime.Engine) -> Iterator[EpochTicker]:
    ticker = EpochTicker(engine, tick_ms=5).start()
    yield ticker
    ticker.stop()


@pytest.fixture(scope="module", params=[True, False], ids=["native", "public"])
def runner(request: pytest.FixtureRequest, engine: wasmtime.Engine, ticker: EpochTicker) -> ExtismRunner:
    """Both ways across the C API: raw kernel callbacks (the default) and wasmtime-py's public API."""
    return ExtismRunner(engine, ticker, fast=request.param)


@pytest.fixture(scope="module")
def greeting(engine: wasmtime.Engine) -> ExtismPlugin:
    return load_plugin(engine, GREETING.read_bytes(), ref="greeting-extism", functions=["greet"])


@pytest.fixture(scope="module")
def abuse(engine: wasmtime.Engine) -> ExtismPlugin:
    return load_plugin(engine, (CORPUS / "kernel_abuse.wasm").read_bytes(), ref="kernel-abuse", functions=ABUSE_EXPORTS)


def corpus_plugin(engine: wasmtime.Engine, name: str, functions: list[str]) -> ExtismPlugin:
    return load_plugin(engine, (CORPUS / f"{name}.wasm").read_bytes(), ref=name, functions=functions)
