"""The component memory meter (worker/sandbox/component/meter.py): `memory_bytes` of a component call is the size
of its memory after the call, read through the export the host adds, on the committed WAT-built components."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import wasmtime
import wasmtime.component as wc

from tests.sandbox.component.conftest import GREETING_DIR, HOSTILE_DIR, LIMITS, Loader
from worker.errors import MemoryLimitExceeded, ModuleRejected
from worker.sandbox.compiler import BoundedCompiler
from worker.sandbox.component.loader import LoadedComponent
from worker.sandbox.component.meter import METER_EXPORT, PAGE_BYTES, with_meter
from worker.sandbox.component.runner import ComponentRunner
from worker.sandbox.engine import make_engine
from worker.spec import MIB

GREETING = GREETING_DIR / "greeting_component.wasm"
# greeting.wat declares `(memory 1)` and bumps its heap from 1024, growing the memory to fit: a 1 MiB name is
# copied in at 1024 (to 1049600: 17 pages), the 1 MiB + 14 byte answer placed after it (to 2098190: 33 pages).
ONE_PAGE, BIG_NAME_PAGES = 1, 33


def test_a_call_reports_the_memory_the_component_declares(runner: ComponentRunner, greeting: LoadedComponent) -> None:
    assert greeting.meter is not None
    result = runner.call(greeting, "greet", "Alice", LIMITS)
    assert result.output == "Hello World, Alice!"
    assert result.usage.memory_bytes == ONE_PAGE * PAGE_BYTES == 65536


def test_the_memory_reported_grows_when_the_call_grows_it(runner: ComponentRunner, greeting: LoadedComponent) -> None:
    result = runner.call(greeting, "greet", "x" * MIB, LIMITS)
    assert len(result.output) == MIB + 14
    assert result.usage.memory_bytes == BIG_NAME_PAGES * PAGE_BYTES == 2162688


def test_in_a_batch_each_item_reports_the_memory_after_it(runner: ComponentRunner, greeting: LoadedComponent) -> None:
    """One instance serves the chunk: the memory grows at the big name and never shrinks after it."""
    results = runner.call_many(greeting, "greet", ["a", "x" * MIB, "b"], LIMITS)
    assert [r.usage.memory_bytes // PAGE_BYTES for r in results] == [ONE_PAGE, BIG_NAME_PAGES, BIG_NAME_PAGES]  # type: ignore[union-attr]


def test_the_guest_pays_no_fuel_for_the_meter(runner: ComponentRunner, greeting: LoadedComponent) -> None:
    unmetered = dataclasses.replace(greeting, meter=None)
    with_meter_ = runner.call(greeting, "greet", "Zoë 🌍", LIMITS).usage
    without = runner.call(unmetered, "greet", "Zoë 🌍", LIMITS).usage
    assert without.memory_bytes == 0
    assert with_meter_.fuel == without.fuel > 0


def test_a_failed_call_reports_no_memory(runner: ComponentRunner, load: Loader) -> None:
    with pytest.raises(MemoryLimitExceeded) as info:
        runner.call(load.hostile("memory_grow"), "greet", "x", LIMITS)
    assert info.value.details["usage"]["memory_bytes"] == 0  # a trapped instance cannot be entered again


@pytest.mark.parametrize("path", [GREETING, *sorted(HOSTILE_DIR.glob("*.wasm"))], ids=lambda p: p.stem)
def test_every_committed_component_gets_the_meter(path: Path) -> None:
    engine = make_engine()
    metered = with_meter(path.read_bytes())
    assert metered is not None
    assert METER_EXPORT in wc.Component(engine, metered).type.exports(engine)


def test_a_component_exporting_the_meters_name_is_refused(load: Loader, tmp_path: Path) -> None:
    """Its own `wasmq-memory-pages` could answer anything: the host must be able to trust that export."""
    taken = with_meter(GREETING.read_bytes())
    assert taken is not None
    path = tmp_path / "taken.wasm"
    path.write_bytes(taken)
    with pytest.raises(ModuleRejected, match="reserves for its memory meter"):
        load(path)
    with pytest.raises(ModuleRejected, match="reserves for its memory meter"):
        BoundedCompiler().compile(taken, kind="component", ref="taken@1")


def test_the_bounded_compiler_adds_the_meter() -> None:
    """Workers compile in a child process (and publishing checks the same way): the artifact has the meter."""
    compiled = BoundedCompiler().compile(GREETING.read_bytes(), kind="component", ref="greeting-component@1")
    component = wc.Component.deserialize(make_engine(), compiled.artifact)
    assert component.get_export_index(METER_EXPORT) is not None


def test_bytes_the_reader_does_not_know_get_no_meter() -> None:
    wasm = GREETING.read_bytes()
    assert with_meter(wasm[:-3]) is None  # cut inside the last section
    assert with_meter(wasmtime.wat2wasm("(module (memory 1))")) is None  # a core module
    assert with_meter(wasm[:8]) is None  # a component with no memory at all
