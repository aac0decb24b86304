"""Components that import WASI 0.2 (modules/greeting_wasi): a call works, what it prints is captured and
bounded, it sees no arguments, no files, no network and exactly the granted environment, and an import outside `wasi:`
(or a clock or randomness not granted) is refused at load time."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import wasmtime

from tests.sandbox.component.conftest import GREETING_WIT, HOSTILE_DIR, LIMITS, ROOT
from worker.errors import ModuleRejected, ModuleTrap
from worker.sandbox.component.loader import LoadedComponent, load_component
from worker.sandbox.component.runner import ComponentRunner
from worker.sandbox.component.wasi import check_imports, wasi_package
from worker.sandbox.component.wit import load_world
from worker.sandbox.engine import EpochTicker
from worker.spec import Capabilities

GREETING_WASI = ROOT / "modules" / "greeting_wasi" / "greeting_wasi.wasm"
NOTHING_GRANTED = "\nenv=0 args=0 dirs=0\n"


def load(engine: wasmtime.Engine, path: Path = GREETING_WASI, **grants: object) -> LoadedComponent:
    world = load_world(GREETING_WIT, "greeter")
    caps = Capabilities(**grants)  # type: ignore[arg-type]  # the tests name real fields
    return load_component(engine, path.read_bytes(), ref=path.stem, world=world, functions=["greet"], capabilities=caps)


def test_the_component_imports_wasi(engine: tuple[wasmtime.Engine, EpochTicker]) -> None:
    loaded = load(engine[0])
    assert loaded.wasi
    names = sorted(loaded.component.type.imports(engine[0]))
    assert "wasi:cli/stdout@0.2.0" in names and "wasi:filesystem/preopens@0.2.0" in names


def test_a_call_works_and_its_output_is_captured(
    runner: ComponentRunner, engine: tuple[wasmtime.Engine, EpochTicker]
) -> None:
    result = runner.call(load(engine[0], output_bytes=4096), "greet", "Zoë", LIMITS)
    assert result.output == "Hello World, Zoë!"
    assert result.stdout == "Zoë" + NOTHING_GRANTED  # no env, no args, no preopened directory
    assert result.stderr == ""
    assert 0 < result.usage.fuel < LIMITS.fuel


def test_output_is_bounded_by_the_publication(
    runner: ComponentRunner, engine: tuple[wasmtime.Engine, EpochTicker]
) -> None:
    name = "x" * 20_000  # five writes of at most 4096 bytes each, then the counts line
    result = runner.call(load(engine[0], output_bytes=10), "greet", name, LIMITS)
    assert result.output == f"Hello World, {name}!"
    dropped = len(name) + len(NOTHING_GRANTED) - 10
    assert result.stdout == "x" * 10 + f"\n[... {dropped} more bytes dropped]"


def test_output_not_granted_is_dropped(runner: ComponentRunner, engine: tuple[wasmtime.Engine, EpochTicker]) -> None:
    result = runner.call(load(engine[0]), "greet", "Al", LIMITS)
    assert result.stdout == f"\n[... {2 + len(NOTHING_GRANTED)} more bytes dropped]"


def test_output_is_bounded_by_the_worker(engine: tuple[wasmtime.Engine, EpochTicker]) -> None:
    strict = ComponentRunner(*engine, max_captured_output=3)
    result = strict.call(load(engine[0], output_bytes=4096), "greet", "Alice", LIMITS)
    assert result.stdout.startswith("Ali\n[... ")


def test_it_sees_exactly_the_granted_environment(
    runner: ComponentRunner, engine: tuple[wasmtime.Engine, EpochTicker]
) -> None:
    loaded = load(engine[0], output_bytes=100, env=(("A", "1"), ("B", "2")))
    assert runner.call(loaded, "greet", "", LIMITS).stdout == "\nenv=2 args=0 dirs=0\n"


def test_every_call_gets_its_own_capture(runner: ComponentRunner, engine: tuple[wasmtime.Engine, EpochTicker]) -> None:
    loaded = load(engine[0], output_bytes=100)
    results = runner.call_many(loaded, "greet", ["a", "b", "c"], LIMITS)
    assert [r.stdout for r in results if not isinstance(r, Exception)] == [n + NOTHING_GRANTED for n in ("a", "b", "c")]


def test_it_gets_no_network(runner: ComponentRunner, engine: tuple[wasmtime.Engine, EpochTicker]) -> None:
    """Name lookup: permanent-resolver-failure ('u'); a TCP socket: access-denied ('b'); so no connect ('-')."""
    probe = load(engine[0], HOSTILE_DIR / "network_probe.wasm")
    assert runner.call(probe, "greet", "", LIMITS).output == "ub-"


def test_the_network_probe_sees_a_grant(
    runner: ComponentRunner, engine: tuple[wasmtime.Engine, EpochTicker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: with the host network inherited and lookups allowed, the same probe's lookup succeeds."""
    import worker.sandbox.component.runner as runner_module
    from worker.sandbox.component import wasi

    def granting(caps: Capabilities, output: wasi.StoreOutput) -> wasmtime.WasiConfig:
        config = wasi.wasi_config(caps, output)
        wasi._native.wasi_config_inherit_network(config.ptr())
        wasi._native.wasi_config_allow_ip_name_lookup(config.ptr(), True)
        return config

    monkeypatch.setattr(runner_module, "wasi_config", granting)
    probe = load(engine[0], HOSTILE_DIR / "network_probe.wasm")
    assert runner.call(probe, "greet", "", LIMITS).output.startswith("+")


def test_without_the_wasi_linker_it_fails_cleanly(
    runner: ComponentRunner, engine: tuple[wasmtime.Engine, EpochTicker]
) -> None:
    """Only components checked as WASI ones reach the WASI Linker; any other is a clean instantiation error."""
    unchecked = replace(load(engine[0]), wasi=False)
    with pytest.raises(ModuleTrap, match="instantiation"):
        runner.call(unchecked, "greet", "Alice", LIMITS)
    assert runner.call(load(engine[0]), "greet", "Alice", LIMITS).output == "Hello World, Alice!"


def test_a_non_wasi_import_is_rejected(engine: tuple[wasmtime.Engine, EpochTicker]) -> None:
    with pytest.raises(ModuleRejected, match=r"imports \['wasmq:host/environment@0\.1\.0'\]"):
        load(engine[0], HOSTILE_DIR / "non_wasi_import.wasm")


@pytest.mark.parametrize(
    "name",
    [
        "log",
        "wasix:cli/stdout@0.2.0",
        "wasi:http/outgoing-handler@0.2.0",
        "wasi:cli",
        "wasi:/stdout",
        "wasi:cli/",
        "Wasi:cli/stdout@0.2.0",
        "wasmq:host/environment@0.1.0",
    ],
)
def test_only_wasi_interfaces_of_the_known_packages_are_allowed(name: str) -> None:
    assert wasi_package(name) is None
    with pytest.raises(ModuleRejected, match="may import only wasi: interfaces") as info:
        check_imports(["wasi:cli/stdout@0.2.0", name], ref="m@1", capabilities=Capabilities())
    assert repr(name) in info.value.message


@pytest.mark.parametrize(
    ("name", "capability"),
    [("wasi:clocks/monotonic-clock@0.2.0", "clock"), ("wasi:clocks/wall-clock@0.2.3", "clock"),
     ("wasi:random/random@0.2.0", "random"), ("wasi:random/insecure-seed@0.2.0", "random")],
)  # fmt: skip
def test_clocks_and_randomness_need_their_capability(name: str, capability: str) -> None:
    with pytest.raises(ModuleRejected, match=f"needs the capability '{capability}'"):
        check_imports([name], ref="m@1", capabilities=Capabilities())
    assert check_imports([name], ref="m@1", capabilities=Capabilities(**{capability: True}))


def test_the_other_wasi_packages_need_nothing_granted() -> None:
    names = ["wasi:cli/environment@0.2.0", "wasi:io/poll@0.2.0", "wasi:filesystem/types@0.2.0",
             "wasi:sockets/tcp@0.2.0", "wasi:cli/stderr@0.2.6"]  # fmt: skip
    assert check_imports(names, ref="m@1", capabilities=Capabilities())
    assert not check_imports([], ref="m@1", capabilities=Capabilities())
