"""The check before publishing: a module is loaded exactly as a worker would load it, in a child process
under CPU-time and memory limits, so a module too costly to compile (or too large) is refused at publish
time with the limit it hit, and nothing is stored."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis

from worker.catalog.check import check_module
from worker.catalog.publish import Publication, publish
from worker.config import Settings
from worker.devtools.synthetic import costly_greeter, greeter, padded_greeter
from worker.errors import ModuleRejected
from worker.keys import registry_module_key
from worker.spec import MIB

from .test_registry import GREETING, seed_study


def publication(wasm: bytes) -> tuple[Publication, bytes]:
    return Publication(name=f"t-{uuid.uuid4().hex[:10]}", version="1.0.0", functions=["greet:packed"]), wasm


def test_a_good_module_passes_and_yields_its_artifact() -> None:
    pub, wasm = publication(greeter())
    artifact = check_module(pub.spec(wasm), wasm, Settings(compile_timeout_s=30))
    assert artifact[:4] == b"\x7fELF", "native code, as wasmtime serializes it"


def test_a_module_too_costly_to_compile_is_refused() -> None:
    pub, wasm = publication(costly_greeter(1500, 500))  # about 2 s of compiling here (7.5 MB)
    # over its CPU-time limit, or (on a loaded machine) over the wall-time limit of twice that: both are this limit
    with pytest.raises(ModuleRejected, match=r"limit of \d+ s.*compile_timeout_s") as info:
        check_module(pub.spec(wasm), wasm, Settings(compile_timeout_s=1))
    assert info.value.details["limit"] == "compile_timeout_s"


def test_a_module_needing_too_much_memory_to_compile_is_refused() -> None:
    pub, wasm = publication(costly_greeter(1, 300_000))  # one huge function: about 700 MiB to compile
    with pytest.raises(ModuleRejected, match=r"memory limit of 300 MB \(compile_memory_mb\)") as info:
        check_module(pub.spec(wasm), wasm, Settings(compile_memory_mb=300))
    assert info.value.details["limit"] == "compile_memory_mb"


def test_the_checks_verdict_is_the_workers(tmp_path: Path) -> None:
    hostile = Path(__file__).resolve().parents[1] / "corpora" / "hostile"
    wasm = (hostile / "missing_export.wasm").read_bytes()
    pub, _ = publication(wasm)
    with pytest.raises(ModuleRejected, match="does not export 'greet'"):
        check_module(pub.spec(wasm), wasm)


def test_publishing_refuses_what_is_too_large_or_too_costly_and_stores_nothing(tmp_path: Path, redis_url: str) -> None:
    settings = Settings(redis_url=redis_url, manifests=(), cache_dir=None, max_module_mb=8, compile_timeout_s=1)
    big = tmp_path / "big.wasm"
    big.write_bytes(padded_greeter(8 * MIB + 1))
    costly = tmp_path / "costly.wasm"
    costly.write_bytes(costly_greeter(1500, 500))
    for path, why in ((big, "more than WASMQ_MAX_MODULE_MB"), (costly, "compile_timeout_s")):
        pub = Publication(name=f"t-{uuid.uuid4().hex[:10]}", version="1.0.0", functions=["greet:packed"])
        with pytest.raises(ModuleRejected, match=why):
            publish(settings, path, pub)
        with redis.Redis.from_url(redis_url) as r:
            assert not r.exists(registry_module_key(pub.name)), "nothing may be visible after a refusal"
    assert publish(
        settings.with_(max_module_mb=64, compile_timeout_s=60), GREETING, seed_study(f"t-{uuid.uuid4().hex[:8]}")
    ).added
