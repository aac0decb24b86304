"""The extism ABI through the Sandbox (worker/sandbox/extism/backend.py): the greeting plugin served like any
module, its config from the spec, its errors typed, the spec's limits enforced, its logs in the job's log."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import structlog

from tests.sandbox.extism.conftest import ABUSE_EXPORTS, CORPUS, GREETING
from worker.catalog import ModuleCatalog
from worker.config import Settings
from worker.errors import DeadlineExceeded, FuelExhausted, InvalidInput, InvalidOutput, ModuleRejected, ModuleTrap
from worker.sandbox import Sandbox
from worker.sandbox.compiler import BoundedCompiler
from worker.spec import FunctionSpec, Limits, ModuleSpec


def plugin_spec(path: Path, functions: list[str], *, name: str = "plugin", **more: object) -> ModuleSpec:
    return ModuleSpec(
        name=name, version="1.0.0", path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), abi="extism",
        functions={f: FunctionSpec(name=f, abi="extism") for f in functions}, **more,  # type: ignore[arg-type]
    )  # fmt: skip


GREET = plugin_spec(GREETING, ["greet"], name="greeting-extism")
HOLA = replace(GREET, version="2.0.0", config=(("greeting", "¡Hola"),))
ABUSE = plugin_spec(CORPUS / "kernel_abuse.wasm", ABUSE_EXPORTS, name="kernel-abuse", limits=Limits(fuel=5_000_000))


@pytest.fixture(scope="module", params=[True, False], ids=["native", "public"])
def sandbox(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    settings = Settings(cache_dir=tmp_path_factory.mktemp("cache"))
    with Sandbox(ModuleCatalog([GREET, HOLA, ABUSE]), settings=settings, fast=request.param) as sb:
        yield sb


def test_the_sandbox_serves_the_plugin_through_its_backend(sandbox: Sandbox) -> None:
    assert sandbox.backend(GREET) is sandbox.extism and GREET.is_extism and not GREET.is_component
    result = sandbox.call("greeting-extism@1.0.0", "greet", "Zoë")
    assert result.output == "Hello World, Zoë!"
    assert result.usage.fuel > 0 and result.usage.memory_bytes >= 65536
    json.dumps(result.to_dict())


def test_config_comes_from_the_spec(sandbox: Sandbox) -> None:
    assert sandbox.call("greeting-extism@2.0.0", "greet", "José").output == "¡Hola, José!"
    assert sandbox.call("greeting-extism@1.0.0", "greet", "José").output == "Hello World, José!"


def test_error_set_is_a_plugin_error_with_the_message(sandbox: Sandbox) -> None:
    with pytest.raises(ModuleTrap) as caught:
        sandbox.call(GREET, "greet", "")
    assert caught.value.details["trap_code"] == "plugin_error"
    assert caught.value.message == "plugin error: greet: the name must not be empty"
    json.dumps(caught.value.to_dict())


def test_call_many_gives_one_result_or_typed_error_per_item(sandbox: Sandbox) -> None:
    results = sandbox.call_many(HOLA, "greet", ["a", "", 7, "Ω"])
    assert [getattr(r, "output", None) for r in results] == ["¡Hola, a!", None, None, "¡Hola, Ω!"]
    assert isinstance(results[1], ModuleTrap) and results[1].details["trap_code"] == "plugin_error"
    assert isinstance(results[2], InvalidInput)


def test_limits_from_the_spec_and_the_job(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidOutput, match="over the limit of 10"):
        sandbox.call(GREET, "greet", "Zoë", {"max_output_bytes": 10})
    with pytest.raises(InvalidInput):
        sandbox.call(GREET, "greet", "x" * 20, {"max_input_bytes": 10})
    with pytest.raises(InvalidInput, match="above this module's maximum"):
        sandbox.call(GREET, "greet", "Zoë", {"fuel": 10**12})
    with pytest.raises(FuelExhausted):
        sandbox.call(GREET, "greet", "Zoë", {"fuel": 100})
    with pytest.raises(FuelExhausted):
        sandbox.call(ABUSE, "spin", "")
    with pytest.raises(DeadlineExceeded):
        sandbox.call(replace(ABUSE, version="2", limits=Limits(fuel=10**12, timeout_ms=50)), "spin", "")
    with pytest.raises(InvalidInput, match="no function"):
        sandbox.call(GREET, "nope", "Zoë")
    assert sandbox.call(GREET, "greet", "still here").output == "Hello World, still here!"


def test_plugin_logs_go_to_the_job_log_bounded(sandbox: Sandbox) -> None:
    with structlog.testing.capture_logs() as logs:
        sandbox.call(GREET, "greet", "Zoë")
    assert logs == [
        {
            "event": "greeting 3 UTF-16 units",
            "log_level": "info",
            "module": "greeting-extism@1.0.0",
            "function": "greet",
        }
    ]
    with structlog.testing.capture_logs() as flood:
        sandbox.call(ABUSE, "log_flood", "")
    assert 1 < len(flood) <= 257  # the runner's per-call bound, and a line saying how many were dropped
    assert "more log lines dropped" in flood[-1]["event"]


def test_a_bad_plugin_is_rejected_and_remembered(tmp_path: Path) -> None:
    core = tmp_path / "core.wasm"
    core.write_bytes((Path(__file__).resolve().parents[3] / "modules/greeting/greeting.wasm").read_bytes())
    spec = plugin_spec(core, ["greet"], name="not-a-plugin")
    with Sandbox(ModuleCatalog([spec]), settings=Settings(cache_dir=None)) as sb:
        for _ in range(2):
            with pytest.raises(ModuleRejected):
                sb.call(spec, "greet", "x")


def test_a_fresh_sandbox_loads_the_plugin_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(cache_dir=tmp_path / "cache")
    with Sandbox(ModuleCatalog([GREET]), settings=settings) as first:
        assert not first.load(GREET, compile=False)
        assert first.load(GREET)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled although the artifact was in the cache")

    monkeypatch.setattr(BoundedCompiler, "compile", refuse)
    with Sandbox(ModuleCatalog([GREET]), settings=settings) as second:
        assert second.load(GREET, compile=False)
        assert second.call(GREET, "greet", "again").output == "Hello World, again!"
