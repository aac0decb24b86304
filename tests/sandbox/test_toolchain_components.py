"""The greeting components built by real toolchains (modules/greeting_py: componentize-py, modules/greeting_js:
componentize-js) answer through the component runner, non-ASCII names included; greeting_py_wasi (CPython
with its WASI 0.2 imports kept) runs through wasmtime's WASI host once granted a clock and randomness.

Each compile costs 13 to 16 s of CPU (CPython or SpiderMonkey, 12 to 18 MB, with fuel instrumentation). Every CI
run already compiles each once and serves it through a real worker (tests/integration/test_toolchain_components.py),
so these in-process calls, which would compile each again, run only with WASMQ_TEST_TOOLCHAIN_COMPONENTS=1; the
cheap checks always run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worker.errors import ModuleRejected
from worker.sandbox.component.loader import check_component, compile_component, load_component
from worker.sandbox.component.runner import ComponentRunner
from worker.sandbox.component.wit import load_world
from worker.sandbox.engine import EpochTicker, make_engine
from worker.spec import Capabilities, Limits

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = {
    "greeting_py": ROOT / "modules" / "greeting_py" / "greeting_py.wasm",
    "greeting_js": ROOT / "modules" / "greeting_js" / "greeting_js.wasm",
}
GREETING_PY_WASI = ROOT / "modules" / "greeting_py" / "greeting_py_wasi.wasm"
SLOW = pytest.mark.skipif(
    os.environ.get("WASMQ_TEST_TOOLCHAIN_COMPONENTS") != "1", reason="slow compile: WASMQ_TEST_TOOLCHAIN_COMPONENTS=1"
)
COMPONENT_HEADER = b"\0asm\x0d\x00\x01\x00"


@pytest.mark.parametrize("path", [*sorted(COMPONENTS.values()), GREETING_PY_WASI], ids=lambda p: p.stem)
def test_built_file_is_a_component(path: Path) -> None:
    with path.open("rb") as f:
        assert f.read(8) == COMPONENT_HEADER


@SLOW
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


@SLOW
@pytest.mark.timeout(900)
def test_greeting_py_with_wasi_imports_runs_once_granted_a_clock_and_randomness() -> None:
    engine = make_engine()
    ticker = EpochTicker(engine, tick_ms=5).start()
    try:
        world = load_world(ROOT / "modules" / "greeting_component" / "greeting.wit", "greeter")
        component = compile_component(engine, GREETING_PY_WASI.read_bytes(), ref="greeting_py_wasi")
        with pytest.raises(ModuleRejected, match="needs the capability 'clock'"):
            check_component(engine, component, ref="greeting_py_wasi", world=world, functions=["greet"])
        caps = Capabilities(clock=True, random=True, output_bytes=1024)
        loaded = check_component(
            engine, component, ref="greeting_py_wasi", world=world, functions=["greet"], capabilities=caps
        )
        assert loaded.wasi
        runner = ComponentRunner(engine, ticker)
        limits = Limits(fuel=10**10, timeout_ms=10_000, memory_mb=256)
        for person in ("Alice", "Zoë"):
            result = runner.call(loaded, "greet", person, limits)
            assert result.output == f"Hello World, {person}!"
        batch = runner.call_many(loaded, "greet", ["a", "b", "c"], limits)
        assert [getattr(r, "output", r) for r in batch] == ["Hello World, a!", "Hello World, b!", "Hello World, c!"]
    finally:
        ticker.stop()
