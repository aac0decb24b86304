"""Bounds on untrusted data (worker/bounds.py): nothing recursive, nothing unbounded, whatever the value."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.bounds import (
    Cut,
    Shape,
    ShapeError,
    bounded_copy,
    check_shape,
    encoded_size,
    escaped_bound,
    short_repr,
    without_paths,
)


def nested(depth: int, leaf: Any = None, *, kind: str = "list") -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


DEEP = nested(200_000)  # far past the interpreter's recursion limit
DEEP_OBJECT = nested(200_000, kind="dict")
SHAPE = Shape(max_depth=8, max_nodes=1000, max_string=100)


@pytest.mark.parametrize("value", [DEEP, DEEP_OBJECT], ids=["lists", "objects"])
def test_nesting_past_the_recursion_limit_is_refused_naming_where(value: Any) -> None:
    assert sys.getrecursionlimit() < 200_000
    with pytest.raises(ShapeError, match=r"^args\[.*\.\.\. is nested deeper than 8 levels"):
        check_shape(value, SHAPE, "args")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([0] * 1001, "holds more than 1000 values"),
        ([[0] * 600, [0] * 600], "holds more than 1000 values"),
        (["x" * 101], r"args\[0\] is a string of 101 characters"),
        ([["ok", "y" * 101]], r"args\[0\]\[1\] is a string of 101"),
        ({"k" * 101: 1}, "key or a string of more than 100"),
        ({"k": "v" * 101}, "key or a string of more than 100"),
        ([b"bytes"], "is a bytes, not a JSON value"),
        ([{1: 2}], "has a key of type int"),
        ([{"a": {1, 2}}], r"args\[0\]\['a'\] is a set"),
        ([object()], "is a object, not a JSON value"),
    ],
)
def test_what_is_refused_is_named(value: Any, message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        check_shape(value, SHAPE, "args")


def test_json_within_the_shape_passes_and_is_counted() -> None:
    body = [["greeting", "greet", [f"name {i}" for i in range(500)], {"fuel": 5}], {}, {"chain": None}]
    assert check_shape(body, Shape(max_depth=8, max_nodes=1000), "body") == 510
    assert check_shape(nested(8), SHAPE, "args") == 9
    assert check_shape(None, SHAPE, "args") == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5),
    max_leaves=40,
)


@given(json_values)
def test_any_json_passes_a_shape_that_fits_it(value: Any) -> None:
    assert check_shape(value, Shape(max_depth=50, max_nodes=10_000), "v") >= 1


@given(json_values)
def test_a_bounded_copy_of_small_json_is_the_value_itself(value: Any) -> None:
    copy, cut = bounded_copy(value, Cut(max_string=100, max_items=100, max_depth=50))
    assert not cut and copy == value


def test_a_bounded_copy_stays_within_its_cut_whatever_the_value() -> None:
    huge = {"input": "x" * 10_000_000, "inputs": ["y"] * 100_000, "deep": DEEP, "raw": b"\xff" * 1000}
    copy, cut = bounded_copy(huge, Cut(max_string=50, max_items=10, max_depth=4))
    assert cut
    assert encoded_size(copy) < 10_000
    assert copy["input"].startswith("x" * 50) and "9999950 more characters" in copy["input"]
    assert len(copy["inputs"]) == 11 and copy["inputs"][-1] == "... 99990 more items not kept"
    assert "nested too deep" in json.dumps(copy["deep"])
    assert copy["raw"].startswith("b'\\xff")
    many = bounded_copy({str(i): i for i in range(100)}, Cut(max_items=3))[0]
    assert len(many) == 4 and many["..."] == "97 more keys not kept"


def test_short_repr_is_short_for_anything() -> None:
    assert short_repr(DEEP, 50).startswith("[[[")
    assert len(short_repr("x" * 10_000_000, 40)) <= 40
    assert len(short_repr(b"x" * 10_000_000, 40)) <= 40
    assert len(short_repr({"a": ["b" * 1000] * 1000}, 100)) <= 100

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert "Hostile" in short_repr(Hostile())


@given(st.text(max_size=50))
def test_the_escaped_bound_is_never_below_the_json_size(text: str) -> None:
    assert escaped_bound(text) >= encoded_size(text)


def test_control_and_astral_characters_are_what_costs_most() -> None:
    assert encoded_size("\x01") == 8 and escaped_bound("\x01") == 14
    assert encoded_size("\U0001f600") == 14 and escaped_bound("\U0001f600") == 14


def test_server_paths_are_reduced_to_their_last_part() -> None:
    text = "cannot read /srv/wasmq/modules/greeting.wasm (see /etc/wasmq/) at redis://host:6379/0 or ./rel/x"
    assert without_paths(text) == "cannot read greeting.wasm (see <dir>) at redis://host:6379/0 or ./rel/x"
    assert without_paths("module greeting@1.0.0: 3/4 calls") == "module greeting@1.0.0: 3/4 calls"


def test_results_of_any_shape_become_typed_errors_without_recursion() -> None:
    from worker.outcome import Outcome, to_error

    deep = nested(100_000)
    assert to_error(deep).type == "JobFailed" and len(to_error(deep).message) < 300
    assert to_error({"exc_type": "InvalidInput", "exc_message": [deep, {}]}).type == "InvalidInput"
    assert to_error({"exc_type": "ModuleTrap", "exc_message": "plain text"}).message == "plain text"
    outcome = Outcome.from_entry(deep)
    assert outcome.error is not None and len(outcome.error.message) < 300
