"""The greeting components built by real toolchains (modules/greeting_py: componentize-py, modules/greeting_js:
componentize-js) answer through the component runner, non-ASCII names included.

Compiling them is slow (CPython or SpiderMonkey, 12 to 18 MB, with fuel instrumentation: 25 to 90 s on this
class of machine), so the calls run only with WASMQ_TEST_TOOLCHAIN_COMPONENTS=1; the cheap checks always run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worker.sandbox.component.loader import load_component
from worker.sandbox.component.runner import ComponentRunner
from worker.sandbox.component.wit import load_world
from worker.sandbox.engine import EpochTicker, make_engine
from worker.spec import Limits

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = {
    "greeting_py": ROOT / "modules" / "greeting_py" / "greeting_py.wasm",
    "greeting_js": ROOT / "modules" / "greeting_js" / "greeting_js.wasm",
}
COMPONENT_HEADER = b"\0asm\x0d\x00\x01\x00"


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_built_file_is_a_component(name: str) -> None:
    with COMPONENTS[name].open("rb") as f:
        assert f.read(8) == COMPONENT_HEADER


@pytest.mark.skipif(
    os.environ.get("WASMQ_TEST_TOOLCHAIN_COMPONENTS") != "1", reason="slow compile: WASMQ_TEST_TOOLCHAIN_COMPONENTS=1"
)
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_greets_through_the_component_runner(name: str) -> None:
    engine = make_engine()
    ticker = EpochTicker(engine, tick_ms=5).start()
    try:
        world = load_world(ROOT / "modules" / "greeting_component" / "greeting.wit", "greeter")
        loaded = load_component(engine, COMPONENTS[name].read_bytes(), ref=name, world=world, functions=["greet"])
        runner = ComponentRunner(engine, ticker)
        limits = Limits(fuel=10**10, timeout_ms=10_000, memory_mb=256)
        for person in ("Alice", "Zoë", "José", "日本語"):
            assert runner.call(loaded, "greet", person, limits).output == f"Hello World, {person}!"
    finally:
        ticker.stop()
