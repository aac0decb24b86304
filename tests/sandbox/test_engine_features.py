"""Engine settings (worker/sandbox/engine.py): only the proposals the ABIs need are on, a module that uses
another is `ModuleRejected` naming it (through the bounded compiler, as a worker loads it), the per-call table
limits hold, and every setting is part of the precompiled cache key."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import wasmtime
import wasmtime.component

from tests.corpora import generate_hostile as corpus
from tests.sandbox.conftest import COMPILE_DIR, GREETING_MANIFEST, greets, spec_for
from worker.catalog import ModuleCatalog
from worker.config import Settings
from worker.errors import MemoryLimitExceeded, ModuleRejected
from worker.sandbox import Sandbox, engine
from worker.sandbox.engine import FEATURES, engine_fingerprint, explain_invalid, make_engine

ROOT = Path(__file__).resolve().parents[2]
GREETING_WIT = ROOT / "modules" / "greeting_component" / "greeting.wit"


def _feature_specs() -> list[tuple[str, str, str]]:
    """(module name, abi, the feature the rejection must name) for every feature case of the corpus."""
    cases = [(stem, "packed", feature) for stem, (_, feature) in corpus.FEATURES.items()]
    cases += [(stem, "component", feature) for stem, (_, feature) in corpus.COMPONENT_FEATURES.items()]
    return [("feature-" + stem.replace("_", "-"), abi, feature) for stem, abi, feature in cases]


@pytest.fixture(scope="module")
def corpus_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    specs = list(ModuleCatalog.from_manifests([GREETING_MANIFEST]))
    for path in sorted(COMPILE_DIR.glob("feature_*.wasm")):
        component = path.stem.startswith("feature_component_")
        spec = spec_for(
            path, name=path.stem.replace("_", "-"), functions={"greet": "component" if component else "packed"}
        )
        specs.append(replace(spec, wit=GREETING_WIT.read_text(), world="greeter") if component else spec)
    for stem in corpus.LIMITS:
        specs.append(
            spec_for(
                COMPILE_DIR / f"limit_{stem}.wasm", name="limit-" + stem.replace("_", "-"), functions={"run": "scalar"}
            )
        )
    cache = tmp_path_factory.mktemp("features-cache")
    with Sandbox(ModuleCatalog(specs), settings=Settings(cache_dir=cache)) as sb:
        yield sb


@pytest.mark.parametrize(("name", "abi", "feature"), _feature_specs(), ids=str)
def test_a_module_using_a_disabled_proposal_is_rejected_naming_it(
    corpus_sandbox: Sandbox, name: str, abi: str, feature: str
) -> None:
    spec = corpus_sandbox.catalog.resolve(name)
    with pytest.raises(ModuleRejected) as info:
        corpus_sandbox.load(spec)
    assert feature.lower() in info.value.details["feature"].lower()
    assert feature.lower() in info.value.message.lower()
    assert "does not enable" in info.value.message
    greets(corpus_sandbox)


def test_every_corpus_feature_case_is_refused_by_the_engine_itself() -> None:
    """The same, in process: the engine refuses each case, and explain_invalid names it."""
    eng = make_engine()
    for stem, (wat, feature) in corpus.FEATURES.items():
        with pytest.raises(wasmtime.WasmtimeError) as info:
            wasmtime.Module(eng, wasmtime.wat2wasm(wat))
        named, _ = explain_invalid(str(info.value))
        assert named is not None and feature.lower() in named.lower(), stem


def test_the_repositorys_modules_need_nothing_that_is_off() -> None:
    eng = make_engine()
    corpora = ROOT / "tests" / "corpora"
    paths = [
        *(ROOT / "modules").glob("*/*.wasm"),
        *corpora.glob("hostile/*.wasm"),
        *corpora.glob("hostile_components/*.wasm"),
    ]
    assert len(paths) > 30
    for path in sorted(paths):
        wasm = path.read_bytes()
        if path.name == "malformed.wasm":
            continue
        if wasm[4:8] == b"\x01\x00\x00\x00":
            wasmtime.Module(eng, wasm)  # raises if a disabled proposal were needed
        else:
            wasmtime.component.Component(eng, wasm)


def test_a_table_above_the_element_cap_is_a_memory_limit(corpus_sandbox: Sandbox) -> None:
    with pytest.raises(MemoryLimitExceeded, match="table"):
        corpus_sandbox.call("limit-huge-table", "run", "")
    greets(corpus_sandbox)


def test_more_tables_than_allowed_is_rejected(corpus_sandbox: Sandbox) -> None:
    with pytest.raises(ModuleRejected, match="table count"):
        corpus_sandbox.call("limit-many-tables", "run", "")
    greets(corpus_sandbox)


def test_table_grow_stops_at_the_element_cap(corpus_sandbox: Sandbox) -> None:
    # one element, then 65,536 more (65,537 fits under 100,000), then the next 65,536 are refused
    assert corpus_sandbox.call("limit-table-grow", "run", "").output == "1"
    greets(corpus_sandbox)


def test_explain_invalid_leaves_other_errors_alone() -> None:
    assert explain_invalid("failed to parse\n\nCaused by:\n    unexpected end-of-file (at offset 0xe)\n") == (
        None,
        "unexpected end-of-file (at offset 0xe)",
    )


def test_explain_invalid_looks_only_at_the_cause() -> None:
    """A function name in the message (here `threads`) must not be mistaken for the proposal."""
    message = "failed to compile: wasm[0]::function[3]::threads\n\nCaused by:\n    1: type mismatch (at offset 0x20)"
    assert explain_invalid(message)[0] is None


def test_every_engine_setting_is_in_the_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    before = engine_fingerprint()
    assert "cow=1" in before and "opt=speed" in before
    for name in FEATURES:
        assert f"{name.removeprefix('wasm_')}=" in before
    monkeypatch.setitem(FEATURES, "wasm_simd", False)
    assert engine_fingerprint() != before
    monkeypatch.setattr(engine, "MEMORY_INIT_COW", False)
    monkeypatch.setattr(engine, "CRANELIFT_OPT_LEVEL", "none")
    assert len({before, engine_fingerprint()}) == 2


def test_publishing_refuses_a_shared_memory_module_by_name() -> None:
    """It used to pass `wasmq modules add` and then fail every call."""
    from worker.catalog.check import check_module

    path = COMPILE_DIR / "feature_shared_memory.wasm"
    with pytest.raises(ModuleRejected, match="threads"):
        check_module(spec_for(path, name="shared"), path.read_bytes())
