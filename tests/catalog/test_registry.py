"""The shared registry against a real Redis: publishing (checked, immutable, several ABIs in one version),
lookup by name and by `name@version`, yanking, change notices, chunked blobs, and what a lookup says when a
module is not there (nothing about the other modules)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from tests.support.sandbox import GREETERS, GREETING_MANIFEST, greeting
from worker.catalog import ModuleCatalog
from worker.catalog.publish import Publication, publish, yank
from worker.catalog.registry import Registry
from worker.config import Settings
from worker.devtools.synthetic import padded_greeter
from worker.errors import ConfigError, ModuleNotFound, ModuleRejected, PublishConflict, WasmqError
from worker.keys import REGISTRY_CHUNK_BYTES, registry_blob_key, registry_module_key
from worker.sandbox import Sandbox
from worker.spec import MIB, Capabilities

ROOT = Path(__file__).resolve().parents[2]
GREETING = ROOT / "modules" / "greeting" / "greeting.wasm"
GREETING_C = ROOT / "modules" / "greeting_c" / "greeting_c.wasm"
# The seed study's module: one file, a function in each of three ABIs (and the packed greet with its batch).
SEED_STUDY = [
    "wasm_memory_rust_format_hello_world:seed-rust",
    "wasm_memory_c_format_hello_world:seed-c",
    "answer:scalar",
    "greet",
]


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings(redis_url=redis_url, manifests=(), cache_dir=None, registry_poll_s=0.2)


@pytest.fixture
def name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def catalog(settings: Settings) -> Iterator[ModuleCatalog]:
    cat = ModuleCatalog.from_settings(settings)
    yield cat
    cat.close()


def soon(check: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait until `check()` passes: a change reaches a process by a notice in milliseconds, not at once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check() is not False:
                return
        except (AssertionError, WasmqError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("the change was never seen")
        time.sleep(0.01)


def refused(error: type[WasmqError], pattern: str, call: Callable[..., object], *args: object) -> bool:
    """Whether `call(*args)` now raises `error` with a message matching `pattern` (for `soon`)."""
    try:
        call(*args)
    except error as exc:
        return re.search(pattern, exc.message) is not None
    return False


def seed_study(name: str, version: str = "1.0.0", **more: object) -> Publication:
    return Publication(
        name=name, version=version, functions=SEED_STUDY, abi="packed", batch={"greet": "greet_many"}, **more
    )  # type: ignore[arg-type]


def test_one_version_serves_functions_of_several_abis(settings: Settings, catalog: ModuleCatalog, name: str) -> None:
    published = publish(settings, GREETING, seed_study(name))
    assert published.added and published.entry.spec.ref == f"{name}@1.0.0"
    spec = catalog.resolve(name)
    assert spec.path is None, "served from the registry, not from a file"
    assert {f: s.abi for f, s in spec.functions.items()} == {
        "wasm_memory_rust_format_hello_world": "seed-rust", "wasm_memory_c_format_hello_world": "seed-c",
        "answer": "scalar", "greet": "packed",
    }  # fmt: skip
    with Sandbox(catalog, settings=settings) as sandbox:
        for function in {f for module, f in GREETERS if module == "greeting"}:
            assert sandbox.call(name, function, "Ann").output == greeting("Ann")
        assert sandbox.call(f"{name}@1.0.0", "answer", "").output == "42"
        outputs = [r.output for r in sandbox.call_many(name, "greet", ["a", "b", "c"])]  # type: ignore[union-attr]
        assert outputs == [greeting(n) for n in "abc"]


def test_the_identical_publication_is_a_no_op_and_anything_else_a_conflict(settings: Settings, name: str) -> None:
    first = publish(settings, GREETING, seed_study(name))
    again = publish(settings, GREETING, seed_study(name))
    assert first.added and not again.added
    assert again.entry.published_at == first.entry.published_at
    with pytest.raises(PublishConflict, match=r"bytes: sha256 .* there, .* here"):
        publish(settings, GREETING_C, seed_study(name))
    with pytest.raises(PublishConflict, match=r"functions: .*seed-rust.* there, greet:packed here") as info:
        publish(settings, GREETING, Publication(name=name, version="1.0.0", functions=["greet:packed"]))
    assert info.value.details["differences"]
    with pytest.raises(PublishConflict, match="limits: fuel 100000000 there, 5 here"):
        publish(settings, GREETING, seed_study(name, limits={"fuel": 5}))
    with pytest.raises(PublishConflict, match="capabilities: none there, clock here"):
        publish(settings, GREETING, seed_study(name, capabilities=Capabilities(clock=True)))


def test_pinning_and_the_newest_version(settings: Settings, catalog: ModuleCatalog, name: str) -> None:
    publish(settings, GREETING, seed_study(name, "1.9.0"))
    publish(settings, GREETING_C, Publication(name=name, version="1.10.0", functions=["greet:packed"]))
    assert catalog.resolve(name).version == "1.10.0"
    assert catalog.resolve(f"{name}@1.9.0").sha256 != catalog.resolve(f"{name}@1.10.0").sha256
    assert len(catalog.resolve(f"{name}@1.9.0").functions) == 4


def test_a_yanked_version_is_not_served_and_never_comes_back(
    settings: Settings, catalog: ModuleCatalog, name: str
) -> None:
    publish(settings, GREETING, seed_study(name, "1.0.0"))
    publish(settings, GREETING, seed_study(name, "2.0.0"))
    assert catalog.resolve(name).version == "2.0.0"
    entry, changed = yank(settings, f"{name}@2.0.0", reason="prints secrets")
    assert changed and entry.yanked is not None and entry.yanked.reason == "prints secrets"
    soon(lambda: catalog.resolve(name).version == "1.0.0")  # a job naming only the module: the newest not yanked
    with pytest.raises(ModuleNotFound, match=rf"{name}@2\.0\.0 was yanked at .* prints secrets"):
        catalog.resolve(f"{name}@2.0.0")
    assert yank(settings, f"{name}@2.0.0")[1] is False
    for wasm in (GREETING, GREETING_C):
        with pytest.raises(PublishConflict, match=r"yanked .*never comes back"):
            publish(settings, wasm, seed_study(name, "2.0.0"))
    yank(settings, f"{name}@1.0.0")
    soon(lambda: refused(ModuleNotFound, r"every version .* is yanked", catalog.resolve, name))
    with pytest.raises(ConfigError, match="NAME@VERSION"):
        yank(settings, name)
    with pytest.raises(ModuleNotFound):
        yank(settings, f"{name}@9.9.9")


def test_not_found_names_nothing_else_that_is_registered(settings: Settings, catalog: ModuleCatalog, name: str) -> None:
    publish(settings, GREETING, seed_study(name))
    other = f"{name}-other"
    with pytest.raises(ModuleNotFound) as info:
        catalog.resolve(other)
    assert name not in info.value.message.replace(other, "")
    with pytest.raises(ModuleNotFound, match=r"has no version '3\.0\.0'; its newest versions: \['1\.0\.0'\]"):
        catalog.resolve(f"{name}@3.0.0")


def test_a_change_is_seen_by_the_next_lookup(settings: Settings, catalog: ModuleCatalog, name: str) -> None:
    publish(settings, GREETING, seed_study(name, "1.0.0"))
    assert catalog.resolve(name).version == "1.0.0"  # cached now
    watch = catalog._watch
    assert watch is not None
    watch.poll_s = 3600.0  # only the pushed notices can tell it
    publish(settings, GREETING, seed_study(name, "1.1.0"))
    soon(lambda: catalog.resolve(name).version == "1.1.0")
    yank(settings, f"{name}@1.1.0")
    soon(lambda: catalog.resolve(name).version == "1.0.0")


def test_without_notices_the_revision_poll_catches_up(
    settings: Settings, catalog: ModuleCatalog, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(settings, GREETING, seed_study(name, "1.0.0"))
    assert catalog.resolve(name).version == "1.0.0"
    watch = catalog._watch
    assert watch is not None
    monkeypatch.setattr(watch, "_drain", set)  # every notice lost
    publish(settings, GREETING, seed_study(name, "1.1.0"))
    soon(lambda: catalog.resolve(name).version == "1.1.0")


def test_large_modules_are_stored_in_chunks_once(
    tmp_path: Path, settings: Settings, catalog: ModuleCatalog, name: str
) -> None:
    wasm = padded_greeter(20 * MIB + 123, label=name)
    tmp = tmp_path / f"{name}.wasm"
    tmp.write_bytes(wasm)
    publish(settings, tmp, Publication(name=name, version="1.0.0", functions=["greet:packed"]))
    publish(settings, tmp, Publication(name=f"{name}-alias", version="7.0.0", functions=["greet:packed"]))
    sha = catalog.resolve(name).sha256
    assert catalog.resolve(f"{name}-alias").sha256 == sha
    with redis.Redis.from_url(settings.redis_url) as r:
        assert int(r.hget(registry_blob_key(sha), "chunks") or 0) == -(-len(wasm) // REGISTRY_CHUNK_BYTES)
        assert r.hlen(registry_blob_key(sha)) == 2 + 21, "one blob for both names"
    assert catalog.wasm(catalog.resolve(name)) == wasm
    with Sandbox(catalog, settings=settings) as sandbox:
        assert sandbox.call(f"{name}-alias", "greet", "big").output == greeting("big")
    small = Registry(settings.registry, max_module_bytes=MIB)
    with pytest.raises(ModuleRejected, match="more than the 1048576 this host accepts"):
        small.blob(catalog.resolve(name))
    small.close()


def test_a_malformed_entry_spoils_only_its_own_version(settings: Settings, catalog: ModuleCatalog, name: str) -> None:
    publish(settings, GREETING, seed_study(name, "1.0.0"))
    with redis.Redis.from_url(settings.redis_url) as r:
        r.hset(registry_module_key(name), "2.0.0", json.dumps({"name": name, "version": "2.0.0"}))
        r.hset(registry_module_key(name), "3.0.0", b"\xff not json")
    assert catalog.resolve(f"{name}@1.0.0").version == "1.0.0"
    with pytest.raises(ModuleRejected, match=rf"{name}@2\.0\.0 cannot be served: .*sha256"):
        catalog.resolve(f"{name}@2.0.0")
    with pytest.raises(ModuleRejected, match="not JSON"):
        catalog.resolve(name)  # the newest is broken: refused, not silently replaced by an older one
    problems = {listed.spec.version: listed.problem for listed in catalog.listing(name)}
    assert problems["1.0.0"] is None and problems["2.0.0"] is not None and problems["3.0.0"] is not None


def test_seed_and_registry_which_wins(tmp_path: Path, settings: Settings, name: str) -> None:
    """The same publication in both: served, bytes from the seed's file. Other content: refused for that
    version, naming both. A yank in the registry withdraws the seed's version too."""
    seed = tmp_path / "manifest.json"
    entries = [
        {"name": name, "version": v, "file": str(GREETING), "sha256": json.loads(GREETING_MANIFEST.read_text())[
            "modules"][0]["sha256"], "abi": "packed", "functions": {"greet": {"abi": "packed"}}}
        for v in ("1.0.0", "2.0.0", "3.0.0")
    ]  # fmt: skip
    seed.write_text(json.dumps({"modules": entries}))
    seeded = settings.with_(manifests=(seed,))
    publish(settings, GREETING, Publication(name=name, version="1.0.0", functions=["greet:packed"]))
    publish(settings, GREETING_C, Publication(name=name, version="2.0.0", functions=["greet:packed"]))
    with pytest.raises(PublishConflict, match=f"seed manifest {seed}"):
        publish(seeded, GREETING_C, Publication(name=name, version="3.0.0", functions=["greet:packed"]))
    catalog = ModuleCatalog.from_settings(seeded)
    try:
        assert catalog.resolve(f"{name}@1.0.0").path == GREETING
        with pytest.raises(ModuleRejected, match=rf"{name}@2\.0\.0 is published in the registry and in seed manifest"):
            catalog.resolve(f"{name}@2.0.0")
        assert catalog.resolve(f"{name}@3.0.0").path == GREETING  # only in the seed
        yank(seeded, f"{name}@3.0.0", reason="withdrawn")
        soon(lambda: refused(ModuleNotFound, "yanked .* withdrawn", catalog.resolve, f"{name}@3.0.0"))
        origins = {listed.spec.version: listed.origin for listed in catalog.listing(name)}
        assert origins == {"1.0.0": f"registry + seed manifest {seed}", "2.0.0": f"registry + seed manifest {seed}",
                           "3.0.0": f"registry + seed manifest {seed}"}  # fmt: skip
    finally:
        catalog.close()


def test_the_spec_records_the_publication(settings: Settings, catalog: ModuleCatalog, name: str) -> None:
    caps = Capabilities(clock=True, env=(("LANG", "fr"),), output_bytes=1024)
    publish(settings, GREETING, seed_study(name, capabilities=caps, limits={"fuel": 1000, "timeout_ms": 50}))
    spec = catalog.resolve(name)
    assert spec.capabilities == caps
    assert spec.limits.fuel == 1000 and spec.limits.timeout_ms == 50
    (listed,) = catalog.listing(name)
    assert listed.entry is not None and listed.entry.size == GREETING.stat().st_size
    assert listed.entry.published_by.startswith("default (") and listed.entry.published_at.endswith("Z")
    assert replace(listed.spec, path=None) == spec


def test_while_the_registry_is_down_cached_and_seeded_modules_are_served(tmp_path: Path) -> None:
    from worker.devtools.embedded_redis import EmbeddedRedis
    from worker.errors import RegistryUnavailable

    with EmbeddedRedis() as server:
        settings = Settings(redis_url=server.url, manifests=(GREETING_MANIFEST,), cache_dir=None, registry_poll_s=60)
        publish(settings, GREETING, seed_study("cached"))
        catalog = ModuleCatalog.from_settings(settings)
        try:
            assert catalog.resolve("cached").version == "1.0.0"
            server.kill()
            assert catalog.resolve("cached").version == "1.0.0", "cached: entries are immutable"
            assert catalog.resolve("greeting").path is not None, "the seed still serves"
            with pytest.raises(RegistryUnavailable, match="unreachable") as info:
                catalog.resolve("never-seen")
            assert info.value.retryable
        finally:
            catalog.close()
