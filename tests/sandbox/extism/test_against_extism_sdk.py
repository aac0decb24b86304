"""Side by side with Extism's own Python host SDK (`extism` on PyPI): the same plugin and inputs give the
same answers. Where the two differ on purpose (vars, kernel misuse), the test says how."""

from __future__ import annotations

import extism
import pytest

from tests.sandbox.extism.conftest import CORPUS, GREETING, LIMITS
from worker.errors import ModuleTrap
from worker.sandbox.extism import ExtismPlugin, ExtismRunner

NAMES = ["Alice", "Zoë", "José", "日本語", "🦀 crab", "a" * 5000, "x\u0301 combining"]


@pytest.fixture(scope="module")
def sdk_greeting() -> extism.Plugin:
    return extism.Plugin(GREETING.read_bytes(), wasi=False)


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_same_greeting(runner: ExtismRunner, greeting: ExtismPlugin, sdk_greeting: extism.Plugin, name: str) -> None:
    theirs = sdk_greeting.call("greet", name).decode("utf-8")
    ours, _ = runner.call(greeting, "greet", name, **LIMITS)
    assert ours == theirs == f"Hello World, {name}!"


def test_same_config(runner: ExtismRunner, greeting: ExtismPlugin) -> None:
    config = {"greeting": "¡Hola"}
    sdk = extism.Plugin(GREETING.read_bytes(), wasi=False, config=config)
    assert runner.call(greeting, "greet", "José", config=config, **LIMITS)[0] == sdk.call("greet", "José").decode()


def test_same_error_message(runner: ExtismRunner, greeting: ExtismPlugin, sdk_greeting: extism.Plugin) -> None:
    with pytest.raises(extism.Error) as theirs:
        sdk_greeting.call("greet", "")
    with pytest.raises(ModuleTrap) as ours:
        runner.call(greeting, "greet", "", **LIMITS)
    assert str(ours.value) == f"plugin error: {theirs.value}"


def test_kernel_answers_agree_and_vars_differ_on_purpose(runner: ExtismRunner, abuse: ExtismPlugin) -> None:
    sdk = extism.Plugin((CORPUS / "kernel_abuse.wasm").read_bytes(), wasi=False)
    for function, data in [("length_unknown", ""), ("free_unknown", ""), ("no_rc", ""), ("var_roundtrip", "José")]:
        assert runner.call(abuse, function, data, **LIMITS)[0] == sdk.call(function, data).decode()
    # Extism keeps vars for the plugin's lifetime; here every call is a fresh instance and vars die with it.
    assert sdk.call("var_read", "").decode() == "José"
    assert runner.call(abuse, "var_read", "", **LIMITS)[0] == ""
    # Extism's kernel reads whatever lies at an unknown offset (here 0); this host refuses the access.
    assert sdk.call("load_unknown", "") == b""
    with pytest.raises(ModuleTrap, match="not inside a live memory block"):
        runner.call(abuse, "load_unknown", "", **LIMITS)
