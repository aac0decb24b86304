"""The precompiled cache deserializes only what it wrote itself (worker/precompiled.py): a directory others can
write is not used, and an artifact whose MAC does not match (swapped, patched, foreign, unsigned) is compiled
again and overwritten, never loaded. Every case still answers correctly."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox.conftest import GREETING_MANIFEST
from worker.catalog import ModuleCatalog
from worker.config import Settings
from worker.sandbox import Sandbox
from worker.sandbox.precompiled import KEY_FILE, MAC_BYTES, MAGIC, PrecompiledCache

MODULES = ("greeting", "greeting-c")


def _sandbox(cache: Path) -> Sandbox:
    return Sandbox(ModuleCatalog.from_manifests([GREETING_MANIFEST]), settings=Settings(cache_dir=cache))


def _run(cache: Path) -> dict[str, bool]:
    """Greet through each module in a fresh sandbox; which ones came from the cache."""
    with _sandbox(cache) as sb:
        for module in MODULES:
            assert sb.call(module, "greet", "Alice").output == "Hello World, Alice!"
        return {m: sb.core.compiled(sb.catalog.resolve(m)).from_cache for m in MODULES}


def _artifact(cache: Path, module: str) -> Path:
    with _sandbox(cache) as sb:
        path = sb.precompiled.path(sb.catalog.resolve(module))
    assert path is not None
    return path


@pytest.fixture
def warm(tmp_path: Path) -> Iterator[Path]:
    cache = tmp_path / "cache"
    assert _run(cache) == dict.fromkeys(MODULES, False)
    assert _run(cache) == dict.fromkeys(MODULES, True)
    yield cache


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="wasmq.precompiled")
    return caplog


def test_the_key_is_private_and_artifacts_are_signed(warm: Path) -> None:
    key = warm / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes()) == 32
    assert stat.S_IMODE(warm.stat().st_mode) == 0o700
    raw = _artifact(warm, "greeting").read_bytes()
    assert raw.startswith(MAGIC) and len(raw) > len(MAGIC) + MAC_BYTES


def test_swapped_artifacts_are_never_loaded(warm: Path, logs: pytest.LogCaptureFixture) -> None:
    """Module A's file holding module B's (authentic) artifact would make A run B's code."""
    a, b = _artifact(warm, "greeting"), _artifact(warm, "greeting-c")
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    assert _run(warm) == dict.fromkeys(MODULES, False)
    assert sum("failed authentication" in r.message for r in logs.records) == 2
    assert _run(warm) == dict.fromkeys(MODULES, True)  # overwritten with good ones


def test_a_patched_artifact_is_never_loaded(warm: Path, logs: pytest.LogCaptureFixture) -> None:
    path = _artifact(warm, "greeting")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert _run(warm) == {"greeting": False, "greeting-c": True}
    assert any("failed authentication" in r.message for r in logs.records)


def test_an_artifact_signed_with_another_key_is_never_loaded(tmp_path: Path, warm: Path) -> None:
    other = tmp_path / "other"
    _run(other)
    for module in MODULES:
        _artifact(warm, module).write_bytes(_artifact(other, module).read_bytes())
    assert _run(warm) == dict.fromkeys(MODULES, False)


def test_an_unsigned_artifact_is_never_loaded(warm: Path, logs: pytest.LogCaptureFixture) -> None:
    """A bare serialized module (what older versions wrote, or a file planted there) is compiled again."""
    path = _artifact(warm, "greeting")
    path.write_bytes(path.read_bytes()[len(MAGIC) + MAC_BYTES :])
    assert _run(warm)["greeting"] is False
    assert any("not one of ours" in r.message for r in logs.records)


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722])
def test_a_directory_others_can_write_is_not_used(tmp_path: Path, logs: pytest.LogCaptureFixture, mode: int) -> None:
    cache = tmp_path / "shared"
    cache.mkdir()
    cache.chmod(mode)
    assert _run(cache) == dict.fromkeys(MODULES, False)
    assert _run(cache) == dict.fromkeys(MODULES, False)  # compiled in memory each time
    assert list(cache.iterdir()) == []  # nothing written, not even a key
    assert any("must not be writable by others" in r.message for r in logs.records)


def test_a_directory_of_another_user_is_not_used(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory away")
    cache = tmp_path / "foreign"
    cache.mkdir(mode=0o700)
    os.chown(cache, 65534, 65534)
    assert _run(cache) == dict.fromkeys(MODULES, False)
    assert any("belongs to uid 65534" in r.message for r in logs.records)


def test_a_key_readable_by_others_makes_the_directory_unusable(warm: Path, logs: pytest.LogCaptureFixture) -> None:
    (warm / KEY_FILE).chmod(0o644)
    assert _run(warm) == dict.fromkeys(MODULES, False)
    assert any("the key" in r.message for r in logs.records)


def test_a_key_that_is_a_symlink_is_refused(warm: Path, tmp_path: Path) -> None:
    key = warm / KEY_FILE
    elsewhere = tmp_path / "planted-key"
    elsewhere.write_bytes(b"k" * 32)
    elsewhere.chmod(0o600)
    key.unlink()
    key.symlink_to(elsewhere)
    assert _run(warm) == dict.fromkeys(MODULES, False)


def test_the_refusal_is_logged_once_per_cache(tmp_path: Path, logs: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "open"
    cache.mkdir()
    cache.chmod(0o777)
    precompiled = PrecompiledCache(cache)
    assert not precompiled.usable()
    assert not precompiled.usable()
    assert sum("not using the precompiled cache" in r.message for r in logs.records) == 1
