"""A chunk's result (what `wasmq.call_many` returns), in its two shapes, for both sides.

The lean shape (the default) is what a batch needs and little else: `outputs` (one string per input, null
where the input failed), `errors` (`[index, error]` pairs, in order) and one `usage` for the whole chunk. It
costs a fraction of the per-item shape to build, encode, store and read: 500 greetings take about 12 KB
instead of 58 KB. The per-item shape (`usage="items"`) is `results`, one `{ok, output, usage}` or
`{ok: false, error}` entry per input (worker/outcome.py). Readers accept both.

A chunk sent with a time budget (`budget_s`) may stop early: the worker runs it `STEP` inputs at a time and
starts no step once the budget is spent, so its result answers only the first inputs and says how many it
did not reach (`unreached`); the producer sends those again. A chunk's longest run is then the budget plus
one step, whatever its size: that, not the chunk size, is what its time limits allow for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, compress, count, repeat
from operator import attrgetter, is_not, not_
from typing import Any, Final, cast

from .bounds import short_repr
from .errors import JobFailed, WasmqError
from .outcome import Answer, Outcome, chunk_entries, public_error

LEAN: Final = "chunk"  # usage once per chunk
ITEMS: Final = "items"  # usage per item: the `results` entries
USAGE_SHAPES: Final = (LEAN, ITEMS)
STEP: Final = 500  # inputs a worker runs between two looks at a chunk's time budget
MAX_BUDGET_S: Final = 86_400  # a chunk's time budget from any producer, at most (ours: WASMQ_CHUNK_BUDGET_S)


def longest_run_s(timeout_ms: int, items: int, budget_s: float | None) -> float:
    """The longest a chunk of `items` can run: each step may run its batch call and then every item alone
    to its deadline, so (step + 1) deadlines; without a budget the whole chunk is one step."""
    step = items if budget_s is None else min(items, STEP)
    return timeout_ms / 1000.0 * (step + 1) + (budget_s or 0.0)


def lean_chunk(results: Sequence[Answer | WasmqError]) -> dict[str, Any]:
    """`outputs`, `errors` and the chunk's `usage`: fuel and wall time summed over the calls made, and the
    largest memory any of them reached. The items of one batch call share one usage, counted once. Each
    pass over the items is a map() in C (a chunk is thousands of items); only errors cost a Python step."""
    failed = list(map(isinstance, results, repeat(WasmqError)))
    answers = cast("Sequence[Answer]", results)
    if True in failed:
        outputs: list[str | None] = [None if bad else r.output for r, bad in zip(answers, failed, strict=True)]
        answers = list(compress(answers, map(not_, failed)))
    else:
        outputs = list(map(attrgetter("output"), answers))
    usages = list(map(attrgetter("usage"), answers))
    fuel = memory = 0
    wall = 0.0
    changes = compress(usages, chain((True,), map(is_not, usages[1:], usages)))  # runs share a usage object
    calls = {id(usage): usage for usage in changes}.values()  # each usage once, in order of first use
    for usage in calls:
        numbers = usage.to_dict()
        fuel += int(numbers.get("fuel") or 0)
        wall += float(numbers.get("wall_ms") or 0.0)
        memory = max(memory, int(numbers.get("memory_bytes") or 0))
    errors = [[index, public_error(cast(WasmqError, results[index]))] for index in compress(count(), failed)]
    usage_total = {"fuel": fuel, "wall_ms": round(wall, 3), "memory_bytes": memory, "calls": len(calls)}
    return {"outputs": outputs, "errors": errors, "usage": usage_total}


def build(results: Sequence[Answer | WasmqError], shape: str) -> dict[str, Any]:
    """The chunk's result body in `shape` (`chunk` or `items`)."""
    return {"results": chunk_entries(results)} if shape == ITEMS else lean_chunk(results)


def reached(value: dict[str, Any], count: int) -> int | str:
    """How many of its `count` inputs a chunk's result answers (all, unless its budget stopped it), or why
    that cannot be believed."""
    unreached = value.get("unreached", 0)
    if type(unreached) is not int or not 0 <= unreached < count:
        return f"chunk says {short_repr(unreached, 40)} of {count} inputs were not reached"
    return count - unreached


@dataclass(slots=True)
class Answers:
    """A chunk's result as read back, for the inputs it reached, in lists rather than one object per item
    (at a million items a batch, per-item objects were a third of a producer's time): `outputs[i]` is input
    i's answer, None where it failed; `errors` the failures by index; `usages` each item's usage when the
    result was of the per-item shape."""

    outputs: list[str | None]
    errors: dict[int, WasmqError]
    usages: list[dict[str, Any]] | None = None


def read(value: Any, count: int) -> Answers | str:
    """The answers of a chunk's stored result for the first of its `count` inputs that it reached (all of
    them unless its budget ran out), or why it cannot be read (a chunk that answered a different number of
    items, or a result of neither shape). An item with neither an output nor an error is a `JobFailed`."""
    if not isinstance(value, dict):
        return f"chunk answered {short_repr(value, 200)}"
    answered = reached(value, count)
    if isinstance(answered, str):
        return answered
    entries = value.get("results")
    if isinstance(entries, list):
        return _read_entries(entries, answered)
    outputs, pairs = value.get("outputs"), value.get("errors")
    if not isinstance(outputs, list) or not isinstance(pairs, list):
        return f"chunk answered neither outputs nor results: {short_repr(value, 200)}"
    if len(outputs) != answered:
        return f"chunk answered {len(outputs)} of {answered}"
    errors: dict[int, WasmqError] = {}
    for pair in pairs:
        if isinstance(pair, list) and len(pair) == 2 and type(pair[0]) is int and 0 <= pair[0] < answered:
            errors[pair[0]] = WasmqError.from_dict(pair[1] if isinstance(pair[1], dict) else {})
    if not set(map(type, outputs)) <= {str}:  # some item failed, or the result is not ours: look at each
        for index, output in enumerate(outputs):
            if type(output) is not str and index not in errors:
                errors[index] = JobFailed(f"chunk item {index} has no output and no error")
    for index in errors:
        outputs[index] = None
    return Answers(outputs, errors)


def _read_entries(entries: list[Any], count: int) -> Answers | str:
    """The per-item shape: one `{ok, output, usage}` or `{ok: false, error}` entry per input."""
    if len(entries) != count:
        return f"chunk answered {len(entries)} of {count}"
    outputs: list[str | None] = []
    errors: dict[int, WasmqError] = {}
    usages: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        outcome = Outcome.from_entry(entry)
        good = outcome.ok and isinstance(outcome.output, str)
        outputs.append(outcome.output if good else None)
        usages.append(outcome.usage if good else {})
        if not good:
            errors[index] = outcome.error or JobFailed(f"chunk item {index} has no output and no error")
    return Answers(outputs, errors, usages)
