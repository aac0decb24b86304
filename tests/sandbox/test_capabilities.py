"""A publication's capabilities, enforced by the sandbox: WASI clocks, randomness, environment variables and
captured output are each off unless granted, on the C-API fast path and the public API alike."""

from __future__ import annotations

from dataclasses import replace

import pytest

from worker.errors import ConfigError
from worker.sandbox import Sandbox
from worker.sandbox.wasi_call import NOTCAPABLE
from worker.spec import Capabilities, ModuleSpec

NOTHING = Capabilities()


def probe(sandbox: Sandbox, capabilities: Capabilities = NOTHING, name: str = "capability-probe") -> ModuleSpec:
    """The registered probe, published again (as another version) with `capabilities`."""
    spec = sandbox.spec(name)
    if capabilities == spec.capabilities:
        return spec
    label = "-".join(capabilities.granted()).replace(" ", "_") or "none"
    return replace(spec, version=f"granted-{label}", capabilities=capabilities)


def answer(sandbox: Sandbox, spec: ModuleSpec, function: str) -> int:
    return int(sandbox.call(spec, function, "").output)


def test_nothing_is_granted_by_default(sandbox: Sandbox) -> None:
    spec = probe(sandbox)
    assert spec.capabilities == NOTHING
    assert answer(sandbox, spec, "clock_errno") == NOTCAPABLE
    assert answer(sandbox, spec, "clock_value") == 0
    assert answer(sandbox, spec, "random_errno") == NOTCAPABLE
    assert answer(sandbox, spec, "env_count") == 0


def test_a_granted_clock_tells_the_time(sandbox: Sandbox) -> None:
    spec = probe(sandbox, Capabilities(clock=True))
    assert answer(sandbox, spec, "clock_errno") == 0
    assert answer(sandbox, spec, "clock_value") > 1_600_000_000 * 10**9  # nanoseconds since 1970, after 2020
    assert answer(sandbox, spec, "random_errno") == NOTCAPABLE  # one grant is not another


def test_granted_randomness(sandbox: Sandbox) -> None:
    spec = probe(sandbox, Capabilities(random=True))
    assert answer(sandbox, spec, "random_errno") == 0
    assert answer(sandbox, spec, "clock_errno") == NOTCAPABLE


def test_the_same_bytes_under_two_publications_keep_their_own_grants(sandbox: Sandbox) -> None:
    both = probe(sandbox, Capabilities(clock=True, random=True))
    none = probe(sandbox)
    assert (answer(sandbox, both, "clock_errno"), answer(sandbox, both, "random_errno")) == (0, 0)
    assert (answer(sandbox, none, "clock_errno"), answer(sandbox, none, "random_errno")) == (NOTCAPABLE,) * 2


def test_the_environment_is_exactly_the_publications(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASMQ_UNIT_SECRET", "hunter2")
    env = (("GREETING", "bonjour"), ("LANG", "fr"))
    spec = probe(sandbox, Capabilities(env=env))
    assert answer(sandbox, spec, "env_count") == 2
    wasi = probe(sandbox, Capabilities(env=env, output_bytes=64), name="wasi-probe")
    assert sandbox.call(wasi, "env_probe", "GREETING").output == "bonjour"
    assert sandbox.call(wasi, "env_probe", "WASMQ_UNIT_SECRET").output == "unset"


def test_output_is_dropped_unless_granted_and_never_above_the_workers_cap(sandbox: Sandbox) -> None:
    silent = probe(sandbox, NOTHING, name="wasi-probe")
    result = sandbox.call(silent, "chatty", "Bob")
    assert result.output == "Hello World, Bob!"
    assert result.stdout == result.stderr == f"\n[... {1024 * 1024} more bytes dropped]"
    greedy = probe(sandbox, Capabilities(output_bytes=10 * 1024 * 1024), name="wasi-probe")
    kept = sandbox.settings.max_captured_output
    assert sandbox.call(greedy, "chatty", "Bob").stdout.startswith("x" * kept + "\n[...")


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {"clock": "yes"},
        {"network": True},
        {"output_bytes": -1},
        {"output_bytes": True},
        {"env": ["A=1"]},
        {"env": {"": "x"}},
        {"env": {"A=B": "x"}},
        {"env": {"A": 1}},
        {"env": {"A": "x\0y"}},
        {"env": {"A": "x" * 40_000}},
    ],
    ids=repr,
)
def test_malformed_capabilities_are_config_errors(raw: object) -> None:
    with pytest.raises(ConfigError, match=r"capabilit|environment"):
        Capabilities.parse(raw, "test")


def test_capabilities_round_trip_and_say_what_they_grant() -> None:
    caps = Capabilities(clock=True, env=(("B", "2"), ("A", "1")), output_bytes=100)
    assert Capabilities.parse(caps.to_dict(), "test") == replace(caps, env=(("A", "1"), ("B", "2")))
    assert Capabilities.parse(None, "test") == NOTHING
    assert NOTHING.granted() == []
    assert caps.granted() == ["clock", "env B=2", "env A=1", "output 100 bytes"]
    assert Capabilities(env=(("K", "v" * 50),)).granted() == [f"env K={'v' * 37}..."]
