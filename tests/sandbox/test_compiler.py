"""Bounded compilation (worker/sandbox/compiler.py): wasm is compiled in a child process under CPU-time, memory
and wall-time limits; whatever goes wrong there is a `ModuleRejected` naming the cause, and the worker process
that asked goes on serving calls.

Times are asserted only where the bound is the point, and generously (the machine is shared)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import wasmtime
import wasmtime.component

from tests.corpora import generate_hostile as corpus
from tests.sandbox.conftest import GREETING_MANIFEST, greets, spec_for
from worker.catalog import ModuleCatalog
from worker.config import Settings
from worker.errors import ModuleRejected
from worker.sandbox import Sandbox
from worker.sandbox.compiler import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT_S,
    BoundedCompiler,
    CompileLimits,
    CompileUsage,
    _rejection,
)
from worker.sandbox.engine import make_engine

ROOT = Path(__file__).resolve().parents[2]
GREETING_WASM = ROOT / "modules" / "greeting" / "greeting.wasm"
COMPONENT_WASM = ROOT / "modules" / "greeting_component" / "greeting_component.wasm"


@pytest.fixture(scope="module")
def nested_loops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "nested_loops_80000.wasm"
    path.write_bytes(corpus.nested_loops())
    return path


def test_a_module_compiled_in_the_child_loads_on_the_parents_engine() -> None:
    compiled = BoundedCompiler().compile(GREETING_WASM.read_bytes(), kind="module", ref="greeting@1")
    engine = make_engine()
    module = wasmtime.Module.deserialize(engine, compiled.artifact)
    assert "greet" in {e.name for e in module.exports}
    assert compiled.usage.wall_s > 0 and compiled.usage.max_rss_mb > 0


def test_a_component_compiled_in_the_child_loads_on_the_parents_engine() -> None:
    compiled = BoundedCompiler().compile(COMPONENT_WASM.read_bytes(), kind="component", ref="greeting-component@1")
    wasmtime.component.Component.deserialize(make_engine(), compiled.artifact)


def test_invalid_bytes_keep_their_message() -> None:
    with pytest.raises(ModuleRejected, match="is not valid WebAssembly") as info:
        BoundedCompiler().compile(b"\0asm\x01\0\0\0\x01", kind="module", ref="bad@1")
    assert "limit" not in info.value.details


def test_a_core_module_given_as_a_component_gets_the_hint() -> None:
    with pytest.raises(ModuleRejected, match="wasm-tools component new"):
        BoundedCompiler().compile(GREETING_WASM.read_bytes(), kind="component", ref="core@1")


def test_cpu_time_limit(nested_loops: Path) -> None:
    limits = CompileLimits(timeout_s=1)
    started = time.monotonic()
    with pytest.raises(ModuleRejected, match="limit of") as info:
        BoundedCompiler(limits).compile(nested_loops.read_bytes(), kind="module", ref="loops@1")
    assert time.monotonic() - started < limits.wall_s + 10  # stopped at the limit, not after 20 s of compiling
    assert info.value.details["limit"] == "compile_timeout_s"
    assert set(info.value.details["compile"]) == {"wall_s", "cpu_s", "max_rss_mb"}


def test_memory_limit(nested_loops: Path) -> None:
    """80,000 nested loops need 1.7 GB; at 300 MB the compiler's allocation fails and it aborts (it must not
    hang printing a backtrace: the parent sets RUST_BACKTRACE=0)."""
    started = time.monotonic()
    with pytest.raises(ModuleRejected, match="memory limit of 300 MB") as info:
        BoundedCompiler(CompileLimits(memory_mb=300)).compile(nested_loops.read_bytes(), kind="module", ref="l@1")
    assert time.monotonic() - started < 30
    assert info.value.details["limit"] == "compile_memory_mb"


def test_too_little_memory_to_start_is_a_memory_rejection() -> None:
    with pytest.raises(ModuleRejected, match="memory limit of 40 MB"):
        BoundedCompiler(CompileLimits(memory_mb=40)).compile(GREETING_WASM.read_bytes(), kind="module", ref="g@1")


@pytest.fixture
def compiler_child() -> Iterator[tuple[threading.Thread, list[BaseException], psutil.Process]]:
    """A compile of 80,000 nested loops (default limits) running in a thread, and its child process."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            BoundedCompiler().compile(corpus.nested_loops(), kind="module", ref="loops@1")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    me = psutil.Process()
    deadline = time.monotonic() + 30
    child = None
    while child is None and time.monotonic() < deadline:
        child = next((c for c in me.children() if "worker.sandbox.compiler" in " ".join(c.cmdline())), None)
        time.sleep(0.02)
    assert child is not None, "the compiler child did not start"
    yield thread, errors, child
    if child.is_running():
        child.kill()
    thread.join(timeout=30)


def test_a_child_killed_from_outside_is_a_crash_naming_the_signal(
    compiler_child: tuple[threading.Thread, list[BaseException], psutil.Process],
) -> None:
    thread, errors, child = compiler_child
    child.send_signal(signal.SIGKILL)
    thread.join(timeout=30)
    [error] = errors
    assert isinstance(error, ModuleRejected)
    assert "SIGKILL" in error.message and error.details["crash"].startswith("signal SIGKILL")


def test_a_child_that_stops_making_progress_is_killed_at_the_wall_time_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("worker.sandbox.compiler.WALL_FACTOR", 1.0)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            BoundedCompiler(CompileLimits(timeout_s=3)).compile(corpus.nested_loops(), kind="module", ref="l@1")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    stopped = False
    while not stopped and time.monotonic() - started < 10:
        for child in psutil.Process().children():
            if "worker.sandbox.compiler" in " ".join(child.cmdline()):
                child.suspend()  # uses no CPU from now on: only the wall-time limit can end it
                stopped = True
        time.sleep(0.02)
    thread.join(timeout=60)
    [error] = errors
    assert isinstance(error, ModuleRejected)
    assert "wall-time limit of 3 s" in error.message
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("code", "stderr", "limit", "fragment"),
    [
        (-signal.SIGXCPU, "", "compile_timeout_s", "CPU-time limit"),
        (-signal.SIGABRT, "memory allocation of 1792 bytes failed", "compile_memory_mb", "memory limit"),
        (-signal.SIGABRT, "panicked at x: unhandled out-of-memory error", "compile_memory_mb", "memory limit"),
        (3, '{"error": "MemoryError", "message": ""}', "compile_memory_mb", "memory limit"),
        (-signal.SIGSEGV, "", None, "signal SIGSEGV"),
        (0, "", None, "no artifact"),
        (7, "something odd", None, "exit status 7"),
    ],
)
def test_every_way_the_child_can_end_is_named(code: int, stderr: str, limit: str | None, fragment: str) -> None:
    usage = CompileUsage(wall_s=1.0, cpu_s=0.5, max_rss_mb=100.0)
    error = _rejection(
        ref="m@1", kind="module", wasm=b"", code=code, killed=False, report=stderr, usage=usage, limits=CompileLimits()
    )
    assert fragment in error.message
    assert error.details.get("limit") == limit
    assert error.details["compile"] == usage.to_dict()


def test_pathological_data_segments_compile_in_seconds_with_the_default_limits() -> None:
    """100,000 data segments took 107 s and 2.8 GB with memory_init_cow off (see worker/sandbox/engine.py)."""
    started = time.monotonic()
    compiled = BoundedCompiler(CompileLimits(timeout_s=60, memory_mb=1024)).compile(
        corpus.data_segments(), kind="module", ref="segments@1"
    )  # within half the default memory limit (the child's peak RSS also counts pages shared with its parent)
    assert time.monotonic() - started < 30
    assert compiled.usage.cpu_s < 10


def test_a_huge_function_body_compiles_in_seconds() -> None:
    started = time.monotonic()
    BoundedCompiler().compile(corpus.huge_function(), kind="module", ref="huge@1")
    assert time.monotonic() - started < 30


def test_the_sandbox_rejects_an_over_limit_module_remembers_it_and_keeps_serving(
    tmp_path: Path, nested_loops: Path
) -> None:
    spec = spec_for(nested_loops, name="nested-loops", functions={"run": "scalar"})
    catalog = ModuleCatalog([*ModuleCatalog.from_manifests([GREETING_MANIFEST]), spec])
    settings = Settings(cache_dir=tmp_path / "cache", compile_timeout_s=1)
    with Sandbox(catalog, settings=settings) as corpus_sandbox:
        with pytest.raises(ModuleRejected) as info:
            corpus_sandbox.call("nested-loops", "run", "")
        assert info.value.details["limit"] == "compile_timeout_s"
        greets(corpus_sandbox)
        started = time.monotonic()
        with pytest.raises(ModuleRejected, match="limit of"):
            corpus_sandbox.call("nested-loops", "run", "")  # remembered by hash: no second compile
        assert time.monotonic() - started < 0.5
        greets(corpus_sandbox)


def test_settings_and_environment() -> None:
    assert (Settings().compile_timeout_s, Settings().compile_memory_mb) == (DEFAULT_TIMEOUT_S, DEFAULT_MEMORY_MB)
    settings = Settings.from_env({"WASMQ_COMPILE_TIMEOUT_S": "2.5", "WASMQ_COMPILE_MEMORY_MB": "512"})
    assert (settings.compile_timeout_s, settings.compile_memory_mb) == (2.5, 512)
    assert Settings.from_env(settings.to_env()) == settings


def test_a_process_start_loads_only_what_needs_no_compiling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`worker_process_init` must finish within Celery's 4 s: it loads cached artifacts and compiles nothing."""
    cache = tmp_path / "cache"
    catalog = ModuleCatalog.from_manifests([GREETING_MANIFEST])
    compiles: list[str] = []
    original = BoundedCompiler.compile

    def counting(self: BoundedCompiler, wasm: bytes, *, kind: str, ref: str) -> object:
        compiles.append(ref)
        return original(self, wasm, kind=kind, ref=ref)  # type: ignore[arg-type]

    monkeypatch.setattr(BoundedCompiler, "compile", counting)
    with Sandbox(catalog, settings=Settings(cache_dir=cache)) as cold:
        assert not any(cold.load(spec, compile=False) for spec in catalog)
        assert compiles == []
        for spec in catalog:
            assert cold.load(spec)  # a job would do this
    compiled = len(compiles)
    assert compiled == len(list(catalog))
    with Sandbox(catalog, settings=Settings(cache_dir=cache)) as warm:
        assert all(warm.load(spec, compile=False) for spec in catalog)
        greets(warm)
    assert len(compiles) == compiled
