"""Batch framing: the host refuses a lying `F_many` answer and falls back to one call per item."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import FrozenInstanceError
from functools import partial
from typing import Any

import pytest

from tests.support.sandbox import greeting, instance
from worker.errors import InvalidOutput, WasmqError
from worker.sandbox import CallResult, Sandbox
from worker.sandbox.core import runner
from worker.sandbox.core.abi import call_batch
from worker.sandbox.result import Usage, sharing
from worker.sandbox.validate import (
    decode_frames,
    decode_output,
    decode_outputs,
    encode_frames,
    encode_input,
    encode_inputs,
)

NAMES = ["Alice", "", "Zoë 🌍", "Bob"]


@pytest.mark.parametrize("function", ["greet", "greet_lying"])
def test_lying_batch_falls_back_to_per_item_results(sandbox: Sandbox, function: str) -> None:
    results = sandbox.call_many("bad-frames", function, NAMES)
    assert len(results) == len(NAMES)
    for name, result in zip(NAMES, results, strict=True):
        assert isinstance(result, CallResult), result
        assert result.output == greeting(name)
        assert result.usage.fuel > 0


def test_fallback_keeps_bad_inputs_typed_and_in_place(sandbox: Sandbox) -> None:
    results = sandbox.call_many("bad-frames", "greet", ["a", 7, "b"])
    assert isinstance(results[0], CallResult) and results[0].output == greeting("a")
    assert isinstance(results[1], WasmqError) and results[1].type == "InvalidInput"
    assert isinstance(results[2], CallResult) and results[2].output == greeting("b")


def test_wrong_item_count_is_invalid_output_as_a_batch(sandbox: Sandbox) -> None:
    with instance(sandbox, "bad-frames") as guest, pytest.raises(InvalidOutput) as info:
        call_batch(guest, "greet_many", [b"a", b"b", b"c"], 1024)
    assert "4 items for 3 inputs" in info.value.message


def test_item_length_past_the_block_is_invalid_output_as_a_batch(sandbox: Sandbox) -> None:
    with instance(sandbox, "bad-frames") as guest, pytest.raises(InvalidOutput) as info:
        call_batch(guest, "lying_len_many", [b"a", b"b"], 2048)
    assert "past the end" in info.value.message


def test_item_length_over_the_output_limit_is_invalid_output_as_a_batch(sandbox: Sandbox) -> None:
    # lying_len_many's first item claims 1000 bytes: over a 100-byte item limit, refused before the bounds check.
    with instance(sandbox, "bad-frames") as guest, pytest.raises(InvalidOutput) as info:
        call_batch(guest, "lying_len_many", [b"a", b"b"], 100)
    assert "over the limit" in info.value.message


@pytest.mark.parametrize("module", ["greeting", "greeting-c"])
def test_honest_batch_export_answers_one_frame_per_item(sandbox: Sandbox, module: str) -> None:
    items = [name.encode() for name in NAMES]
    with instance(sandbox, module) as guest:
        raw = call_batch(guest, "greet_many", items, 1024)
    assert [r.decode() for r in raw] == [greeting(n) for n in NAMES]


def test_encode_frames_layout() -> None:
    assert encode_frames([b"ab", b""]) == b"\x02\x00\x00\x00\x02\x00\x00\x00ab\x00\x00\x00\x00"


@pytest.mark.parametrize(
    ("block", "expected", "fragment"),
    [
        (b"", 1, "no item count"),
        (b"\x01\x00\x00", 1, "no item count"),
        (b"\x02\x00\x00\x00", 1, "2 items for 1 inputs"),
        (b"\x01\x00\x00\x00\x05\x00", 1, "length header past the end"),
        (b"\x01\x00\x00\x00\x05\x00\x00\x00abc", 1, "runs past the end"),
        (b"\x01\x00\x00\x00\x01\x00\x00\x00abc", 1, "trailing bytes"),
        (b"\x01\x00\x00\x00\xff\xff\xff\xff", 1, "over the limit"),
    ],
)
def test_decode_frames_refuses_bad_framing(block: bytes, expected: int, fragment: str) -> None:
    with pytest.raises(InvalidOutput) as info:
        decode_frames(block, expected=expected, max_item_bytes=64)
    assert fragment in info.value.message


def _count_instances(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every fresh Store + instance the sandbox makes (each `_run` makes exactly one)."""
    made = [0]
    real = sandbox.core._run

    def counting(*args: object, **kwargs: object) -> object:
        made[0] += 1
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sandbox.core, "_run", counting)
    return made


@pytest.mark.parametrize("module", ["greeting", "greeting-c"])
def test_one_fresh_instance_serves_one_chunk(sandbox: Sandbox, module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    made = _count_instances(sandbox, monkeypatch)
    names = [f"user-{i}" for i in range(500)]
    results = sandbox.call_many(module, "greet", names)
    assert made[0] == 1
    assert [r.output for r in results if isinstance(r, CallResult)] == [greeting(n) for n in names]
    sandbox.call_many(module, "greet", names[:3])
    assert made[0] == 2  # the next chunk gets an instance of its own


def test_a_failed_chunk_reruns_each_item_in_its_own_instance(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    made = _count_instances(sandbox, monkeypatch)
    sandbox.call_many("bad-frames", "greet", NAMES)
    assert made[0] == 1 + len(NAMES)


def test_a_bad_output_in_an_honest_batch_is_that_items_typed_error(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch answer is framed well, but one item is not UTF-8 and one is over the output limit: those two
    get decode_output's InvalidOutput, the others their greeting, with no per-item rerun."""
    made = _count_instances(sandbox, monkeypatch)
    limit: list[int] = []

    def spoiled(guest: object, export: str, items: list[bytes], max_item: int, free: bool) -> list[bytes]:
        raws = call_batch(guest, export, items, max_item, free)  # type: ignore[arg-type]
        limit.append(max_item)
        return [raws[0], b"Hi \xff!", b"x" * (max_item + 1), *raws[3:]]

    monkeypatch.setattr(runner, "call_batch", spoiled)
    results = sandbox.call_many("greeting", "greet", NAMES)
    assert made[0] == 1
    assert [r.output for r in results if isinstance(r, CallResult)] == [greeting(NAMES[0]), greeting(NAMES[3])]
    for result, raw in zip(results[1:3], [b"Hi \xff!", b"x" * (limit[0] + 1)], strict=True):
        with pytest.raises(InvalidOutput) as info:
            decode_output(raw, max_bytes=limit[0])
        assert isinstance(result, InvalidOutput) and result.message == info.value.message


class Text(str):
    """A str subclass: checked item by item (as isinstance allows it), never by the one-pass path."""


def _one_by_one(check: Callable[[Any], Any], values: list[Any]) -> list[Any]:
    out = []
    for value in values:
        try:
            out.append(check(value))
        except WasmqError as exc:
            out.append((type(exc), exc.message))
    return out


def _typed(results: Sequence[Any]) -> list[Any]:
    return [(type(r), r.message) if isinstance(r, WasmqError) else r for r in results]


@pytest.mark.parametrize(
    "inputs",
    [[], ["a", "Zoë 🌍", ""], ["a", 7, None, "b"], ["a", "\ud800", "c"], ["a", "x" * 65, "b"], [Text("t"), "u"]],
)
def test_encode_inputs_is_encode_input_per_item(inputs: list[Any]) -> None:
    assert _typed(encode_inputs(inputs, max_bytes=64)) == _one_by_one(partial(encode_input, max_bytes=64), inputs)


@pytest.mark.parametrize("raws", [[], [b"a", "Zoë 🌍".encode(), b""], [b"a", b"\xc3", b"b"], [b"a", b"x" * 65]])
def test_decode_outputs_is_decode_output_per_item(raws: list[bytes]) -> None:
    assert _typed(decode_outputs(raws, max_bytes=64)) == _one_by_one(partial(decode_output, max_bytes=64), raws)


def test_shared_batch_results_are_ordinary_frozen_call_results() -> None:
    usage = Usage(fuel=3, wall_ms=0.5, memory_bytes=65536)
    error = InvalidOutput("bad")
    made = sharing(["a", error, "b"], usage)
    assert made == [CallResult(output="a", usage=usage), error, CallResult(output="b", usage=usage)]
    first = made[0]
    assert isinstance(first, CallResult) and hash(first) == hash(CallResult(output="a", usage=usage))
    assert (first.stdout, first.stderr, first.to_dict()["output"]) == ("", "", "a")
    with pytest.raises(FrozenInstanceError):
        first.output = "changed"  # type: ignore[misc]
