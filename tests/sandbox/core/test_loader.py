"""The registry: precompiled artifacts are written and reused, a damaged one is recompiled, an unusable cache
directory never fails a call; module checks at load time (imports, exports, `_initialize`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sandbox import GREETING_MANIFEST, greeting, wat_spec
from worker.catalog import ModuleCatalog
from worker.config import Settings
from worker.errors import ModuleRejected
from worker.sandbox import Sandbox

MODULES = ["greeting", "greeting-c"]


def _sandbox(cache_dir: Path | None) -> Sandbox:
    return Sandbox(ModuleCatalog.from_manifests([GREETING_MANIFEST]), settings=Settings(cache_dir=cache_dir))


def _from_cache(sb: Sandbox, module: str) -> bool:
    return sb.core.compiled(sb.catalog.resolve(module)).from_cache


def _greets(sb: Sandbox) -> None:
    for module in MODULES:
        assert sb.call(module, "greet", "Alice").output == greeting("Alice")


@pytest.fixture
def cold_cache(tmp_path: Path) -> Iterator[Path]:
    """A cache directory filled by one sandbox, which is then closed."""
    cache = tmp_path / "cache"
    with _sandbox(cache) as sb:
        _greets(sb)
        assert not any(_from_cache(sb, m) for m in MODULES)
    yield cache


def _artifacts(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.cwasm"))


def test_artifacts_are_written_per_module(cold_cache: Path) -> None:
    arts = _artifacts(cold_cache)
    assert len(arts) == len(MODULES)
    assert all(a.stat().st_size > 0 for a in arts)
    assert not list(cold_cache.glob(".tmp-*"))  # written atomically, no leftovers


def test_second_sandbox_loads_from_the_cache(cold_cache: Path) -> None:
    with _sandbox(cold_cache) as sb:
        _greets(sb)
        assert all(_from_cache(sb, m) for m in MODULES)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_damaged_artifact_is_recompiled_transparently(cold_cache: Path, damage: str) -> None:
    for art in _artifacts(cold_cache):
        good = art.read_bytes()
        art.write_bytes({"garbage": b"not an artifact" * 64, "truncated": good[: len(good) // 2], "empty": b""}[damage])
    with _sandbox(cold_cache) as sb:
        _greets(sb)
        assert not any(_from_cache(sb, m) for m in MODULES)
    with _sandbox(cold_cache) as sb:  # and the recompiled artifact replaced the damaged one
        _greets(sb)
        assert all(_from_cache(sb, m) for m in MODULES)


def test_cache_dir_that_cannot_be_created_does_not_fail_calls(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for cache in (blocker / "cache", blocker):  # under a regular file; a regular file itself
        with _sandbox(cache) as sb:
            _greets(sb)
            assert not any(_from_cache(sb, m) for m in MODULES)
    assert blocker.read_text() == "not a directory"


def test_no_cache_dir_compiles_every_time(tmp_path: Path) -> None:
    for _ in range(2):
        with _sandbox(None) as sb:
            _greets(sb)
            assert not any(_from_cache(sb, m) for m in MODULES)


def test_module_is_compiled_once_per_registry(sandbox: Sandbox) -> None:
    spec = sandbox.catalog.resolve("greeting")
    assert sandbox.core.compiled(spec) is sandbox.core.compiled(spec)


# -- load-time checks on ad hoc modules --------------------------------------------------------------

PACKED_HELPERS = """
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) i32.const 1024)
  (func (export "dealloc") (param i32 i32))
"""


def test_initialize_that_is_not_a_function_never_crashes_the_host(tmp_path: Path) -> None:
    spec = wat_spec(
        tmp_path,
        "init-global",
        '(module (global (export "_initialize") i32 (i32.const 0)) (func (export "f") (result i32) i32.const 7))',
        {"f": "scalar"},
    )
    with _sandbox(None) as sb:
        try:
            assert sb.call(spec, "f", "").output == "7"
        except ModuleRejected:
            pass  # refusing it at load time is as good; what matters is a typed outcome


def test_reactor_initialize_runs_before_the_call(tmp_path: Path) -> None:
    wat = """(module
      (global $ready (mut i32) (i32.const 0))
      (func (export "_initialize") (global.set $ready (i32.const 41)))
      (func (export "f") (result i32) (i32.add (global.get $ready) (i32.const 1))))"""
    with _sandbox(None) as sb:
        assert sb.call(wat_spec(tmp_path, "reactor", wat, {"f": "scalar"}), "f", "").output == "42"


def test_non_function_import_is_rejected(tmp_path: Path) -> None:
    wat = '(module (import "wasi_snapshot_preview1" "mem" (memory 1)) (func (export "f") (result i32) i32.const 1))'
    with _sandbox(None) as sb, pytest.raises(ModuleRejected, match="import"):
        sb.call(wat_spec(tmp_path, "mem-import", wat, {"f": "scalar"}), "f", "")


def test_unknown_wasi_function_is_rejected(tmp_path: Path) -> None:
    wat = """(module (import "wasi_snapshot_preview1" "no_such_call" (func (param i32)))
      (func (export "f") (result i32) i32.const 1))"""
    with _sandbox(None) as sb, pytest.raises(ModuleRejected):
        sb.call(wat_spec(tmp_path, "bad-wasi", wat, {"f": "scalar"}), "f", "")


def test_packed_module_without_memory_is_rejected(tmp_path: Path) -> None:
    wat = """(module
      (func (export "alloc") (param i32) (result i32) i32.const 0)
      (func (export "dealloc") (param i32 i32))
      (func (export "greet") (param i32 i32) (result i64) i64.const 0))"""
    with _sandbox(None) as sb, pytest.raises(ModuleRejected, match="memory"):
        sb.call(wat_spec(tmp_path, "no-memory", wat, {"greet": "packed"}), "greet", "x")


def test_batch_export_with_wrong_signature_is_rejected(tmp_path: Path) -> None:
    wat = f"""(module {PACKED_HELPERS}
      (func (export "greet") (param i32 i32) (result i64) i64.const 0)
      (func (export "greet_many") (param i32) (result i32) i32.const 0))"""
    spec = wat_spec(tmp_path, "bad-batch", wat, {"greet": "packed"}, batch={"greet": "greet_many"})
    with _sandbox(None) as sb, pytest.raises(ModuleRejected, match="batch"):
        sb.call(spec, "greet", "x")


def test_missing_module_file_is_rejected(tmp_path: Path) -> None:
    spec = wat_spec(tmp_path, "gone", '(module (func (export "f") (result i32) i32.const 1))', {"f": "scalar"})
    spec.path.unlink()
    with _sandbox(None) as sb, pytest.raises(ModuleRejected, match="cannot read"):
        sb.call(spec, "f", "")
