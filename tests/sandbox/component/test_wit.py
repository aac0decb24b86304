"""The WIT subset reader: worlds, function signatures with generic types, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sandbox.component.conftest import GREETING_WIT, HOSTILE_DIR
from worker.errors import ConfigError
from worker.sandbox.component.wit import WitFunc, load_world, parse_wit


def test_the_greeting_world() -> None:
    world = load_world(GREETING_WIT, "greeter")
    assert world.package == "wasmq:greeting@1.0.0"
    assert world.ref == "wasmq:greeting/greeter@1.0.0"
    assert world.imports == {}
    assert world.exports == {"greet": WitFunc(name="greet", params=(("name", "string"),), result="string")}
    assert str(world.exports["greet"]) == "greet: func(name: string) -> string"
    assert world.exports["greet"].types == (("string",), "string")


@pytest.mark.parametrize("name", ["greeter", "wasmq:greeting/greeter", "wasmq:greeting/greeter@1.0.0"])
def test_a_world_by_plain_or_qualified_name(name: str) -> None:
    assert load_world(GREETING_WIT, name).name == "greeter"


@pytest.mark.parametrize("name", ["greeting", "other:pkg/greeter", "wasmq:greeting/greeter@2.0.0"])
def test_an_unknown_world_names_what_exists(name: str) -> None:
    with pytest.raises(ConfigError, match=r"has no world .* it defines \['wasmq:greeting/greeter@1.0.0'\]"):
        load_world(GREETING_WIT, name)


def test_imports_and_other_signatures() -> None:
    assert load_world(HOSTILE_DIR / "with_import.wit", "logging-greeter").imports == {
        "log": WitFunc(name="log", params=(("message", "string"),), result=None)
    }
    numeric = load_world(HOSTILE_DIR / "wrong_signature.wit", "numeric-greeter")
    assert numeric.exports["greet"].types == (("u32",), "u32")


def test_generic_types_comments_and_skipped_interfaces() -> None:
    text = """
        /* a block comment
           over two lines */
        package a:b;
        interface ignored { record r { x: u32 } f: func(); }
        world w {
          // a line comment
          export f: func(a: list<u8>, b: option<string>, c: tuple<u32, s64>) -> result<_, string>;
          export %type: func();
          import g: func(x: result<list<list<u8>>, u32>) -> result;
        }
    """
    world = parse_wit(text)["w"]
    assert world.exports["f"].types == (("list<u8>", "option<string>", "tuple<u32, s64>"), "result<_, string>")
    assert world.exports["type"] == WitFunc(name="type", params=(), result=None)
    assert world.imports["g"].types == (("result<list<list<u8>>, u32>",), "result")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("package a:b; world w { export api; }", "is not a function"),
        ("package a:b; world w { export api: interface { f: func(); } }", "is not a function"),
        ("package a:b; world w { include other; }", "'include' items are not supported"),
        ("package a:b; world w { export f: func(); export f: func(); }", "declared twice"),
        ("package a:b; world w { export f: func(x: string) -> string }", "expected ';'"),
        ("package a:b; world w { export f: func(x: string)", "found end of file"),
        ("package a:b; resource r;", "unexpected 'resource' at the top level"),
        ("package a:b; world w { export f: func(x: $) }", "unexpected character '\\$'"),
    ],
)
def test_unsupported_or_malformed_wit_is_a_config_error(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_wit(text, where="test.wit")


def test_an_unreadable_wit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not readable"):
        load_world(tmp_path / "missing.wit", "w")
