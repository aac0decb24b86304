"""Fixtures for the hostile corpora of tests/corpora (compilation, wasm features, WASI host calls): module specs
made straight from the corpus files, and one Sandbox per flavour (C-API fast path and public API) that serves
both the corpus and the real greeting module, so every test can check that a good call still works after a
hostile one, in the same process."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.catalog import ModuleCatalog
from worker.config import Settings
from worker.sandbox import Sandbox, capi
from worker.spec import Capabilities, FunctionSpec, Limits, ModuleSpec

ROOT = Path(__file__).resolve().parents[2]
CORPORA = ROOT / "tests" / "corpora"
COMPILE_DIR = CORPORA / "hostile_compile"
WASI_DIR = CORPORA / "hostile_wasi"
GREETING_MANIFEST = ROOT / "modules" / "manifest.json"


def spec_for(
    path: Path,
    *,
    name: str | None = None,
    functions: dict[str, str] | None = None,
    abi: str | None = None,
    limits: Limits | None = None,
    capabilities: Capabilities | None = None,
) -> ModuleSpec:
    """A module spec for a wasm file (its real sha256); `functions` maps export name to ABI."""
    functions = functions or {"greet": "packed"}
    abis = set(functions.values())
    return ModuleSpec(
        name=name or path.stem.replace("_", "-"),
        version="0.0.1",
        path=path,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        abi=abi or (abis.pop() if len(abis) == 1 else "packed"),
        functions={f: FunctionSpec(name=f, abi=a) for f, a in functions.items()},
        limits=limits or Limits(),
        capabilities=capabilities or Capabilities(),
    )


# The WASI corpus is granted every capability a publication can grant, so that what is tested is the bound on
# each host call, not the refusal (tests/sandbox/test_capabilities.py tests that).
EVERYTHING = Capabilities(clock=True, random=True, output_bytes=1 << 30)


def wasi_name(stem: str) -> str:
    return "wasi-" + stem.replace("_", "-")


def wasi_specs() -> list[ModuleSpec]:
    return [spec_for(p, name=wasi_name(p.stem), capabilities=EVERYTHING) for p in sorted(WASI_DIR.glob("*.wasm"))]


def greets(corpus_sandbox: Sandbox, name: str = "Alice") -> None:
    """The real greeting module answers, in the corpus_sandbox that just ran something hostile."""
    assert corpus_sandbox.call("greeting", "greet", name).output == f"Hello World, {name}!"


@pytest.fixture(scope="session")
def sandbox_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus_sandbox-cache")


@pytest.fixture(scope="module", params=["fast", "public"])
def corpus_sandbox(request: pytest.FixtureRequest, sandbox_cache: Path) -> Iterator[Sandbox]:
    """The greeting manifest plus every WASI corpus module, on the C-API path and on the public API."""
    fast = request.param == "fast"
    specs = [*ModuleCatalog.from_manifests([GREETING_MANIFEST]), *wasi_specs()]
    with Sandbox(ModuleCatalog(specs), settings=Settings(cache_dir=sandbox_cache), fast=fast) as sb:
        assert sb.fast == fast, capi.UNAVAILABLE_REASON
        yield sb
