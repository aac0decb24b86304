"""Manifest parsing, per-call limit narrowing, catalog lookup, and the epoch ticker's deadline arithmetic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from tests.support.sandbox import BOTH_MANIFESTS, GREETING_MANIFEST
from worker.catalog import ModuleCatalog
from worker.catalog.manifest import load_manifest, parse_module
from worker.errors import ConfigError, InvalidInput, ModuleNotFound
from worker.sandbox.engine import EpochTicker, make_engine
from worker.spec import Limits, ModuleSpec, version_key


def _entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "m",
        "version": "1.0.0",
        "file": "m.wasm",
        "sha256": "AB" * 32,
        "functions": {"greet": {"abi": "packed", "batch": "greet_many"}, "f": {"abi": "seed-c"}, "g": None},
    }
    entry.update(changes)
    return entry


def test_real_manifests_parse() -> None:
    specs = [spec for path in BOTH_MANIFESTS for spec in load_manifest(path)]
    names = {s.name for s in specs}
    assert {"greeting", "greeting-c", "loop-forever", "wasi-probe", "tampered"} <= names
    greeting = next(s for s in specs if s.name == "greeting")
    assert greeting.functions["greet"].batch == "greet_many"
    assert greeting.functions["answer"].abi == "scalar"
    assert greeting.path == GREETING_MANIFEST.parent / "greeting" / "greeting.wasm"
    assert greeting.path.exists()


def test_parse_module_defaults(tmp_path: Path) -> None:
    spec = parse_module(_entry(), tmp_path, "test")
    assert isinstance(spec, ModuleSpec)
    assert spec.ref == "m@1.0.0"
    assert spec.sha256 == "ab" * 32
    assert spec.path == (tmp_path / "m.wasm").resolve()
    assert spec.functions["g"].abi == "packed"  # the module's default abi
    assert spec.functions["f"].abi == "seed-c"
    assert spec.limits == Limits()


@pytest.mark.parametrize(
    "changes",
    [
        {"name": ""},
        {"sha256": 5},
        {"abi": "cobol"},
        {"functions": {}},
        {"functions": []},
        {"functions": {"f": "packed"}},
        {"functions": {"f": {"abi": "nope"}}},
        {"functions": {"f": {"abi": "seed-c", "batch": "f_many"}}},  # batch needs packed
        {"functions": {"f": {"batch": 3}}},
        {"limits": {"fuel": 0}},
        {"limits": {"fuel": True}},
        {"limits": {"fuel": "10"}},
        {"limits": {"cpu": 10}},
        {"limits": [1]},
    ],
    ids=repr,
)
def test_malformed_entries_are_config_errors(tmp_path: Path, changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        parse_module(_entry(**changes), tmp_path, "test")


@pytest.mark.parametrize("content", ["{", "[]", '{"modules": {}}', '{"modules": [1]}'])
def test_malformed_manifest_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="manifest"):
        load_manifest(path)


def test_missing_manifest_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_manifest(tmp_path / "nope.json")


def test_limits_narrowing() -> None:
    base = Limits(fuel=1000, timeout_ms=100)
    assert base.narrowed(None) is base
    assert base.narrowed({}) is base
    assert base.narrowed({"fuel": 10, "timeout_ms": None}) == Limits(fuel=10, timeout_ms=100)
    assert base.narrowed({"fuel": 1000}).fuel == 1000
    for bad in ({"fuel": 1001}, {"fuel": 0}, {"nope": 1}, {"timeout_ms": 1.0}):
        with pytest.raises(InvalidInput):
            base.narrowed(bad)
    assert base.to_dict()["fuel"] == 1000


def test_version_order() -> None:
    assert version_key("1.10.0") > version_key("1.9.0")
    assert version_key("2.0.0") > version_key("1.99.99")


def test_catalog_resolves_newest_version_by_default(tmp_path: Path) -> None:
    entries = [_entry(version=v) for v in ("1.9.0", "1.10.0", "1.2.0")]
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"modules": entries}))
    catalog = ModuleCatalog.from_manifests([path])
    assert catalog.resolve("m").version == "1.10.0"
    assert catalog.resolve("m@1.2.0").version == "1.2.0"
    assert catalog.names() == ["m"]
    assert sorted(s.version for s in catalog) == ["1.10.0", "1.2.0", "1.9.0"]
    with pytest.raises(ModuleNotFound, match=r"1\.10\.0"):
        catalog.resolve("m@3.0.0")
    with pytest.raises(ModuleNotFound):
        catalog.resolve(None)  # type: ignore[arg-type]


def test_deadline_ticks_never_shorten_the_timeout() -> None:
    ticker = EpochTicker(make_engine(), tick_ms=5)
    assert ticker.deadline_ticks(1) == 2
    assert ticker.deadline_ticks(5) == 2
    assert ticker.deadline_ticks(6) == 3
    assert ticker.deadline_ticks(1000) == 201


def test_ticker_starts_and_stops() -> None:
    ticker = EpochTicker(make_engine(), tick_ms=1)
    assert not ticker.running
    assert ticker.start() is ticker
    assert ticker.running
    ticker.stop()
    assert not ticker.running


def test_engine_meters_fuel() -> None:
    store = wasmtime.Store(make_engine())
    store.set_fuel(123)
    assert store.get_fuel() == 123
    store.close()
