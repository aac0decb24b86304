"""The message contract: `contract.bind` and the JSON Schema in docs/contract/ say the same thing.

The schema is what a foreign producer reads; the worker checks messages with its own code (fast, and with the
bounds no schema can state). Here both see the same messages: every way to pass the arguments, right and
wrong, and the hostile corpus; where they differ, it is only over those bounds.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.support.contract import MESSAGE, SCHEMA
from tests.support.messages import CORPUS, EMBED, Case, Raw, call
from worker.chunk_result import MAX_BUDGET_S
from worker.config import Settings
from worker.errors import ERROR_TYPES, InvalidInput
from worker.keys import CALL_MANY_TASK, CALL_TASK
from worker.outcome import MAX_ERROR_MESSAGE
from worker.queue import compression
from worker.queue.contract import MAX_CHUNK_ITEMS, MAX_NAME_CHARS, PARAMETERS, bind, parts
from worker.queue.intake import MAX_ID_CHARS, inspect

SETTINGS = Settings()


def as_schema_sees_it(raw: Raw) -> dict[str, Any]:
    """A message as the schema describes it: the envelope's fields, its body decoded."""
    return {
        "headers": raw.headers,
        "content-type": raw.content_type,
        "content-encoding": raw.content_encoding,
        "body": json.loads(raw.body),
    }


def test_the_schema_is_valid_json_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


def test_the_schema_names_what_the_code_names() -> None:
    defs = SCHEMA["$defs"]
    assert defs["taskName"]["enum"] == list(PARAMETERS) == [CALL_TASK, CALL_MANY_TASK]
    assert set(defs["errorType"]["enum"]) == set(ERROR_TYPES)
    assert defs["name"]["maxLength"] == MAX_NAME_CHARS
    assert defs["inputs"]["maxItems"] == MAX_CHUNK_ITEMS
    assert defs["budget"]["maximum"] == MAX_BUDGET_S
    assert defs["id"]["maxLength"] == MAX_ID_CHARS
    assert defs["queue"]["default"] == Settings().queue
    assert defs["error"]["properties"]["message"]["maxLength"] == MAX_ERROR_MESSAGE + 3
    for name, params in PARAMETERS.items():
        body = defs["callBody" if name == CALL_TASK else "callManyBody"]
        assert f"{name}({', '.join([*params[:3], *(f'{p}=null' for p in params[3:])])})" in body["description"]


VALID = {"module": "greeting", "function": "greet", "input": "x", "inputs": ["x", "y"], "limits": {"fuel": 10},
         "usage": "items", "budget_s": 2.5}  # fmt: skip
WRONG = {"module": 7, "function": ["greet"], "input": {"a": 1}, "inputs": "xy", "limits": [1], "usage": "all",
         "budget_s": 0}  # fmt: skip


def _variants() -> list[tuple[str, list[Any], dict[str, Any]]]:
    """Every way to pass a task's arguments (how many in order, which by name), each with right values and
    with one wrong value in each place, and with a name the task does not have."""
    out = []
    for task, params in PARAMETERS.items():
        for positional in range(len(params) + 2):
            names = [*params[positional:], "bogus", *params[:positional]]
            for count in range(len(names) + 1):
                for by_name in itertools.combinations(names, count):
                    if len(by_name) > 2 and "bogus" in by_name:
                        continue
                    fill = [*params, "extra"]
                    args = [VALID.get(p, "extra") for p in fill[:positional]]
                    kwargs = {n: VALID.get(n, 1) for n in by_name}
                    out.append((task, args, kwargs))
                    for index, name in enumerate(fill[:positional]):
                        if name in WRONG:
                            out.append((task, [*args[:index], WRONG[name], *args[index + 1 :]], kwargs))
                    for name in by_name:
                        if name in WRONG:
                            out.append((task, args, {**kwargs, name: WRONG[name]}))
    return out


VARIANTS = _variants()


def test_there_are_many_variants() -> None:
    assert len(VARIANTS) > 500


@pytest.mark.parametrize("chunk", range(10))
def test_the_schema_and_the_intake_agree_on_every_way_to_pass_arguments(chunk: int) -> None:
    disagree = []
    for task, args, kwargs in VARIANTS[chunk::10]:
        raw = call(args, kwargs, task=task)
        by_schema = MESSAGE.is_valid(as_schema_sees_it(raw))
        by_intake = inspect(raw.message(), SETTINGS).error is None
        if by_schema != by_intake:
            disagree.append((task, args, kwargs, by_schema, by_intake))
    assert disagree == []


# Bounds the schema does not state (depth, sizes, counts, what only Celery parses): the worker refuses these
# messages although their shape is the contract's.
ONLY_THE_WORKER_KNOWS = {
    "headers nested deep", "chunk item nested deep", "input of 17 MiB", "header string of 10 KB",
    "headers with 10k keys", "eta not a date", "headers nested 5000 deep",
}  # fmt: skip


@pytest.mark.parametrize("case", [c for c in CORPUS if c.stage != "kombu"], ids=lambda c: c.name)
def test_the_schema_refuses_what_the_worker_refuses(case: Case) -> None:
    raw = case.make()
    try:
        seen = as_schema_sees_it(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return  # not JSON that can be read: nothing for the schema to say
    valid = MESSAGE.is_valid(seen)
    if case.expect is None:
        assert valid, [e.message[:200] for e in MESSAGE.iter_errors(seen)]
    elif case.name in ONLY_THE_WORKER_KNOWS:
        assert valid
    else:
        assert not valid


def test_a_compressed_message_is_described_too() -> None:
    compression.install(SETTINGS.max_message_bytes)
    raw = call(["greeting", "greet", "z"], embed=EMBED)
    assert MESSAGE.is_valid({**as_schema_sees_it(raw), "headers": {**raw.headers, "compression": "zlib"}})
    assert not MESSAGE.is_valid({**as_schema_sees_it(raw), "headers": {**raw.headers, "compression": "brotli"}})


def test_bind_names_what_is_wrong() -> None:
    with pytest.raises(InvalidInput, match=r"wasmq.call takes at most 4 arguments \(module, function, input, limits\)"):
        bind(CALL_TASK, [1, 2, 3, 4, 5], {})
    with pytest.raises(InvalidInput, match="'limits' must be an object or null, not list"):
        bind(CALL_MANY_TASK, ["m", "f", []], {"limits": [1]})
    with pytest.raises(InvalidInput, match="missing argument 'inputs'"):
        bind(CALL_MANY_TASK, ["m", "f"], {"limits": None})
    call_ = bind(CALL_MANY_TASK, ["m"], {"inputs": ["a"], "function": "f"})
    assert (call_.module, call_.function, call_.payload, call_.limits) == ("m", "f", ["a"], None)


@pytest.mark.parametrize("budget", [0, -1, True, "5", float("nan"), float("inf"), MAX_BUDGET_S + 1, [5]])
def test_a_chunk_budget_is_a_positive_bounded_number(budget: Any) -> None:
    with pytest.raises(InvalidInput, match="'budget_s' must be a number of seconds above 0"):
        bind(CALL_MANY_TASK, ["m", "f", ["a"], None, None, budget], {})


def test_a_chunk_budget_is_read_in_order_or_by_name() -> None:
    assert bind(CALL_MANY_TASK, ["m", "f", ["a"], None, None, 2], {}).budget_s == 2.0
    assert bind(CALL_MANY_TASK, ["m", "f", ["a"]], {"budget_s": 0.5}).budget_s == 0.5
    assert bind(CALL_MANY_TASK, ["m", "f", ["a"]], {}).budget_s is None


def test_parts_reads_any_shape_without_raising() -> None:
    assert parts(CALL_TASK, ["m", "f"], {"input": "x", "limits": {}}) == ("m", "f", "x", {})
    assert parts(CALL_MANY_TASK, "junk", [1]) == (None, None, None, None)
    assert parts("other.task", None, {"module": "m"}) == ("m", None, None, None)
