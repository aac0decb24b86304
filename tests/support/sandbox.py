"""Sandbox fixtures: one real Sandbox (both manifests, a private precompiled cache) shared by the session,
and helpers to build ad hoc modules from WAT text and to instantiate a registered module by hand.

The sandbox fixture comes in two flavours, and every test that uses it runs with both: the C-API hot path
(`fast`, worker/sandbox/capi.py, the default in production) and the public wasmtime-py API it falls back to
(`public`), so the two must behave the same."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import wasmtime

from worker.catalog import ModuleCatalog
from worker.config import Settings
from worker.sandbox import Sandbox, capi
from worker.sandbox.guest import Guest, PublicStore
from worker.spec import FunctionSpec, Limits, ModuleSpec

ROOT = Path(__file__).resolve().parents[2]
GREETING_MANIFEST = ROOT / "modules" / "manifest.json"
HOSTILE_MANIFEST = ROOT / "tests" / "corpora" / "hostile" / "manifest.json"
HOSTILE_DIR = ROOT / "tests" / "corpora" / "hostile"
BOTH_MANIFESTS = (GREETING_MANIFEST, HOSTILE_MANIFEST)
# Every (module, function) of the core greeting modules that greets, in all three core ABIs.
GREETERS = [
    ("greeting", "greet"),
    ("greeting", "wasm_memory_rust_format_hello_world"),
    ("greeting", "wasm_memory_c_format_hello_world"),
    ("greeting-c", "greet"),
    ("greeting-c", "wasm_memory_c_format_hello_world"),
]


def greeting(name: str) -> str:
    return f"Hello World, {name}!"


@pytest.fixture(scope="session")
def unit_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("unit-cache")


@pytest.fixture(scope="session", params=["fast", "public"])
def sandbox(request: pytest.FixtureRequest, unit_cache_dir: Path) -> Iterator[Sandbox]:
    """The sandbox every test shares: a hostile call must leave it fit for the next one."""
    fast = request.param == "fast"
    catalog = ModuleCatalog.from_manifests(BOTH_MANIFESTS)
    with Sandbox(catalog, settings=Settings(cache_dir=unit_cache_dir), fast=fast) as sb:
        assert sb.fast == fast, f"the C-API fast path is unavailable: {capi.UNAVAILABLE_REASON}"
        yield sb


def wat_spec(
    directory: Path,
    name: str,
    wat: str,
    functions: dict[str, str],
    *,
    batch: dict[str, str] | None = None,
    limits: Limits | None = None,
) -> ModuleSpec:
    """Compile `wat` to a .wasm file in `directory` and describe it; `functions` maps export name to ABI."""
    wasm = wasmtime.wat2wasm(wat)
    path = directory / f"{name}.wasm"
    path.write_bytes(wasm)
    abis = set(functions.values())
    return ModuleSpec(
        name=name,
        version="0.0.1",
        path=path,
        sha256=hashlib.sha256(wasm).hexdigest(),
        abi=abis.pop() if len(abis) == 1 else "packed",
        functions={f: FunctionSpec(name=f, abi=abi, batch=(batch or {}).get(f)) for f, abi in functions.items()},
        limits=limits or Limits(),
    )


@contextmanager
def instance(sandbox: Sandbox, ref: str | ModuleSpec) -> Iterator[Guest]:
    """An instance of a registered module in a fresh store (generous fuel, far deadline), through the same
    path (C API or public API) as `sandbox`."""
    spec = sandbox.spec(ref)
    compiled = sandbox.core.compiled(spec)
    limits = {"memory_bytes": 64 * 2**20, "table_elements": 10_000, "fuel": 10**9, "ticks": 10**9}
    store: capi.RawStore | PublicStore
    guest: Guest
    if sandbox.fast:
        store = capi.RawStore(capi.address(sandbox.engine), **limits)
        guest = store.instantiate(compiled.pre_address, compiled.signatures)
    else:
        store = PublicStore(sandbox.engine, **limits)
        guest = store.instantiate(compiled.pre)
    try:
        assert guest.mem.size > 0
        yield guest
    finally:
        store.close()
