"""Fixtures for the component tests: one Engine and epoch ticker (from worker.sandbox.engine) for the module,
a runner on them, and the committed components (modules/greeting_component, tests/corpora/hostile_components)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from worker.sandbox.component.loader import LoadedComponent, load_component
from worker.sandbox.component.runner import ComponentRunner
from worker.sandbox.component.wit import WitWorld, load_world
from worker.sandbox.engine import EpochTicker, make_engine
from worker.spec import MIB, Limits

ROOT = Path(__file__).resolve().parents[3]
GREETING_DIR = ROOT / "modules" / "greeting_component"
GREETING_WIT = GREETING_DIR / "greeting.wit"
HOSTILE_DIR = ROOT / "tests" / "corpora" / "hostile_components"

# Generous fuel and time, a small memory cap (fast memory tests), room for a 1 MiB name's greeting.
LIMITS = Limits(fuel=50_000_000, timeout_ms=2_000, memory_mb=8, max_input_bytes=MIB, max_output_bytes=MIB + 64)


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[wasmtime.Engine, EpochTicker]]:
    eng = make_engine()
    ticker = EpochTicker(eng, tick_ms=5).start()
    try:
        yield eng, ticker
    finally:
        ticker.stop()


@pytest.fixture(scope="module")
def runner(engine: tuple[wasmtime.Engine, EpochTicker]) -> ComponentRunner:
    return ComponentRunner(*engine)


@pytest.fixture(scope="module")
def greeter() -> WitWorld:
    return load_world(GREETING_WIT, "greeter")


class Loader:
    """Compiles and checks a component file on the module's Engine (against the greeter world by default)."""

    def __init__(self, engine: wasmtime.Engine, world: WitWorld) -> None:
        self.engine = engine
        self.world = world

    def __call__(
        self, path: Path, world: WitWorld | None = None, functions: tuple[str, ...] = ("greet",)
    ) -> LoadedComponent:
        return load_component(
            self.engine, path.read_bytes(), ref=path.stem, world=world or self.world, functions=functions
        )

    def hostile(self, name: str) -> LoadedComponent:
        return self(HOSTILE_DIR / f"{name}.wasm")


@pytest.fixture(scope="module")
def load(engine: tuple[wasmtime.Engine, EpochTicker], greeter: WitWorld) -> Loader:
    return Loader(engine[0], greeter)


@pytest.fixture(scope="module")
def greeting(engine: tuple[wasmtime.Engine, EpochTicker], greeter: WitWorld) -> LoadedComponent:
    path = GREETING_DIR / "greeting_component.wasm"
    return load_component(engine[0], path.read_bytes(), ref="greeting-component", world=greeter, functions=["greet"])
