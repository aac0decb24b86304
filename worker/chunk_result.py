"""A chunk's result (what `wasmq.call_many` returns), in its two shapes, for both sides.

The lean shape (the default) is what a batch needs and little else: `outputs` (one string per input, null
where the input failed), `errors` (`[index, error]` pairs, in order) and one `usage` for the whole chunk. It
costs a fraction of the per-item shape to build, encode, store and read: 500 greetings take about 12 KB
instead of 58 KB. The per-item shape (`usage="items"`) is `results`, one `{ok, output, usage}` or
`{ok: false, error}` entry per input (worker/outcome.py). Readers accept both.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, compress, count, repeat
from operator import attrgetter, is_not, not_
from typing import Any, Final, cast

from .bounds import short_repr
from .errors import JobFailed, WasmqError
from .outcome import Answer, Outcome, chunk_entries, public_error

LEAN: Final = "chunk"  # usage once per chunk
ITEMS: Final = "items"  # usage per item: the `results` entries
USAGE_SHAPES: Final = (LEAN, ITEMS)


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


def read(value: Any, count: int, meta: dict[str, Any]) -> list[Outcome] | str:
    """The `count` outcomes of a chunk's stored result, or why it cannot be read (a chunk that answered a
    different number of items, or a result of neither shape)."""
    if not isinstance(value, dict):
        return f"chunk answered {short_repr(value, 200)}"
    entries = value.get("results")
    if isinstance(entries, list):
        if len(entries) != count:
            return f"chunk answered {len(entries)} of {count}"
        return [Outcome.from_entry(entry, meta) for entry in entries]
    outputs, errors = value.get("outputs"), value.get("errors")
    if not isinstance(outputs, list) or not isinstance(errors, list):
        return f"chunk answered neither outputs nor results: {short_repr(value, 200)}"
    if len(outputs) != count:
        return f"chunk answered {len(outputs)} of {count}"
    failed: dict[int, Any] = {}
    for pair in errors:
        if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], int) and 0 <= pair[0] < count:
            failed[pair[0]] = pair[1]
    outcomes: list[Outcome] = []
    for index, output in enumerate(outputs):
        if index in failed:
            error = failed[index]
            outcomes.append(Outcome(ok=False, error=WasmqError.from_dict(error if isinstance(error, dict) else {}),
                                    meta=meta))  # fmt: skip
        elif isinstance(output, str):
            outcomes.append(Outcome(ok=True, output=output, meta=meta))
        else:
            outcomes.append(Outcome(ok=False, error=JobFailed(f"chunk item {index} has no output and no error"),
                                    meta=meta))  # fmt: skip
    return outcomes
