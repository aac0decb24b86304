"""Publication entries (worker/catalog/entry.py) for the extism ABI: a module is core, component or extism, a
plugin's config is parsed strictly, written back, and part of what two publications of one version compare."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from worker.catalog.check import check_module
from worker.catalog.entry import differences, entry_from_spec, spec_from_entry
from worker.catalog.publish import Publication
from worker.errors import ConfigError, ModuleRejected

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "modules" / "greeting_extism" / "greeting_extism.wasm"
CORE = ROOT / "modules" / "greeting" / "greeting.wasm"


def plugin_entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "p", "version": "1.0.0", "sha256": "ab" * 32, "abi": "extism",
        "functions": {"greet": None}, "config": {"greeting": "Hi", "b": ""},
    }  # fmt: skip
    entry.update(changes)
    return entry


def test_an_extism_entry_parses_and_round_trips() -> None:
    spec = spec_from_entry(plugin_entry(), "test", path=None, wit=None)
    assert spec.is_extism and not spec.is_component
    assert spec.functions["greet"].abi == "extism"
    assert spec.config == (("b", ""), ("greeting", "Hi"))
    entry = entry_from_spec(spec)
    assert entry["config"] == {"b": "", "greeting": "Hi"}
    assert spec_from_entry(entry, "again", path=None, wit=None) == spec
    core = spec_from_entry(plugin_entry(abi="packed", config=None), "test", path=None, wit=None)
    assert "config" not in entry_from_spec(core) and core.config == ()


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"abi": "packed", "functions": {"greet": {"abi": "packed"}}}, "only abi extism takes a plugin 'config'"),
        ({"functions": {"greet": None, "f": {"abi": "packed"}}}, "has it for all its functions"),
        ({"abi": "packed", "functions": {"greet": {"abi": "extism"}}, "config": None}, "has it, and so do all"),
        ({"config": ["greeting=Hi"]}, "'config' must map keys to text values"),
        ({"config": {"greeting": 3}}, "must have a text value"),
        ({"config": {"": "x"}}, "config key '' must be non-empty"),
        ({"config": {"k": "a\0b"}}, "without NUL"),
        ({"config": {"k": "x" * 70_000}}, "add up to more than"),
        ({"capabilities": {"clock": True}}, "grants no capabilities"),
        ({"functions": {"greet": {"abi": "extism", "batch": "greet_many"}}}, "needs abi packed"),
    ],
)
def test_bad_extism_entries_are_named(changes: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        spec_from_entry(plugin_entry(**changes), "test", path=None, wit=None)


def test_config_is_part_of_what_a_republish_compares() -> None:
    spec = spec_from_entry(plugin_entry(), "test", path=None, wit=None)
    assert differences(spec, spec) == []
    assert differences(spec, replace(spec, description="other")) == []
    other = replace(spec, config=(("greeting", "Ciao"),))
    assert differences(spec, other) == ["config: b=, greeting=Hi there, greeting=Ciao here"]


def test_the_publish_check_loads_a_plugin_as_a_worker_would() -> None:
    wasm = PLUGIN.read_bytes()
    spec = Publication(name="p", version="1", functions=["greet"], abi="extism", config={"greeting": "Hi"}).spec(wasm)
    assert spec.config == (("greeting", "Hi"),)
    assert check_module(spec, wasm)[:4] == b"\x7fELF"
    missing = Publication(name="p", version="1", functions=["nope"], abi="extism").spec(wasm)
    with pytest.raises(ModuleRejected, match="exports no function 'nope'"):
        check_module(missing, wasm)
    core = CORE.read_bytes()
    with pytest.raises(ModuleRejected):
        check_module(Publication(name="c", version="1", functions=["greet"], abi="extism").spec(core), core)
