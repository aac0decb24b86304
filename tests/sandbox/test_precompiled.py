"""Compiled components are kept in the precompiled cache like core modules: a fresh sandbox deserializes
instead of compiling, and a damaged artifact is compiled again and replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.catalog import ModuleCatalog
from worker.config import Settings
from worker.sandbox import Sandbox
from worker.sandbox.compiler import BoundedCompiler

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "modules" / "manifest.json"
MODULE = "greeting-component"


def _greet(cache: Path) -> None:
    with Sandbox(ModuleCatalog.from_manifests([MANIFEST]), settings=Settings(cache_dir=cache)) as sb:
        assert sb.call(MODULE, "greet", "Alice").output == "Hello World, Alice!"


def _artifacts(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.component.cwasm"))


def _no_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled although a good artifact was in the cache")

    monkeypatch.setattr(BoundedCompiler, "compile", refuse)


def test_a_fresh_sandbox_loads_the_component_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    _greet(cache)
    [artifact] = _artifacts(cache)
    written = artifact.stat().st_mtime_ns
    with monkeypatch.context() as m:
        _no_compiling(m)
        _greet(cache)
    assert artifact.stat().st_mtime_ns == written


@pytest.mark.parametrize("damage", [b"", b"not an artifact" * 64])
def test_a_damaged_component_artifact_is_compiled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: bytes
) -> None:
    cache = tmp_path / "cache"
    _greet(cache)
    [artifact] = _artifacts(cache)
    artifact.write_bytes(damage)
    _greet(cache)
    assert artifact.stat().st_size > len(damage)  # replaced by a good one...
    with monkeypatch.context() as m:
        _no_compiling(m)
        _greet(cache)  # ...which the next sandbox uses
