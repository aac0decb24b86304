"""A job's stored result stays within `WASMQ_MAX_RESULT_BYTES` in the JSON Celery stores, and no output is
dropped silently.

Outputs are checked as text, but stored as ASCII-escaped JSON, where one character can take twelve bytes: a
chunk of 50 outputs of 900 KB each once made a 315 MB result. So a chunk's entries are measured (cheaply
first, exactly only when the cheap bound is over the budget), kept in order while they fit, and an entry
that does not fit becomes `ResultTooLarge` (retryable: the producer sends those items again in smaller
chunks, worker/producer/client.py) or, when the one output alone is over the budget, `InvalidOutput`. A
single call's output over the budget is `InvalidOutput`. The backend checks the whole encoded result once
more before storing it (worker/queue/backend.py).
"""

from __future__ import annotations

from typing import Any

from ..bounds import encoded_size, escaped_bound
from ..config import Settings
from ..errors import InvalidOutput, ResultTooLarge
from ..outcome import public_error

RESULT_OVERHEAD = 16 * 1024  # Celery's result meta around a task's return value (its arguments are cut short)
ENTRY_OVERHEAD = 256  # an ok entry besides its output: keys, usage numbers, separators
ERROR_ENTRY_BYTES = 512  # at most what the error entry that replaces an entry takes


def result_budget(settings: Settings) -> int:
    """Bytes a task's return value may take in JSON."""
    return settings.max_result_bytes - RESULT_OVERHEAD


def too_large(size: int, budget: int, settings: Settings) -> InvalidOutput:
    return InvalidOutput(
        f"the output takes {size} bytes as stored JSON, above the result limit of {budget} bytes "
        f"(WASMQ_MAX_RESULT_BYTES={settings.max_result_bytes})",
        encoded_bytes=size,
    )


def check_output(output: str, settings: Settings) -> None:
    """A single call's output fits in its result, or `InvalidOutput`."""
    budget = result_budget(settings)
    if escaped_bound(output) + ENTRY_OVERHEAD <= budget:
        return
    size = encoded_size(output)
    if size + ENTRY_OVERHEAD > budget:
        raise too_large(size, budget, settings)


def _cheap_bound(entries: list[dict[str, Any]]) -> int | None:
    """An upper bound of the entries' JSON size from their outputs' lengths, or None if some entry is not a
    plain ok entry (then only measuring tells)."""
    total = 0
    for entry in entries:
        output = entry.get("output")
        if entry.get("ok") is not True or not isinstance(output, str) or len(entry) != 3:
            return None
        total += len(output)
    return 12 * total + (2 + ENTRY_OVERHEAD) * len(entries)


def _not_fitting(size: int, budget: int, settings: Settings, *, alone: bool = True) -> dict[str, Any]:
    """The error that replaces an output of `size` bytes: `ResultTooLarge` (send it again in a smaller chunk)
    when it would fit in a chunk of its own, else `InvalidOutput`."""
    error: InvalidOutput | ResultTooLarge
    if alone and size + ERROR_ENTRY_BYTES <= budget:
        error = ResultTooLarge(
            f"this output ({size} bytes as JSON) did not fit in the chunk's result; "
            "send the item again alone or in a smaller chunk",
            encoded_bytes=size,
        )
    else:
        error = too_large(size, budget, settings)
    return public_error(error)


def fit_chunk(entries: list[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
    """The entries of a chunk's result, with those that would take it over the budget replaced by errors."""
    budget = result_budget(settings)
    bound = _cheap_bound(entries)
    if bound is not None and bound <= budget:
        return entries
    sizes = [encoded_size(entry) + 2 for entry in entries]
    if sum(sizes) <= budget:
        return entries
    room = budget - ERROR_ENTRY_BYTES * len(entries)  # every entry could end up an error entry
    fitted: list[dict[str, Any]] = []
    used = 0
    for entry, size in zip(entries, sizes, strict=True):
        if used + size <= room:
            fitted.append(entry)
            used += size
            continue
        fitted.append({"ok": False, "error": _not_fitting(size, budget, settings, alone=entry.get("ok") is True)})
    return fitted


def fit_lean(body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """A lean chunk result (worker/chunk_result.py) within the budget: outputs that would take it over become
    errors, in place, as `fit_chunk` does for per-item entries."""
    budget = result_budget(settings)
    outputs: list[str | None] = body["outputs"]
    errors: list[list[Any]] = body["errors"]
    texts = sum(map(len, filter(None, outputs)))  # one pass in C (filter drops None, and "", of length 0)
    if 12 * texts + 4 * len(outputs) + ERROR_ENTRY_BYTES * len(errors) <= budget:
        return body
    sizes = [encoded_size(o) + 1 if o is not None else 5 for o in outputs]
    if sum(sizes) + sum(encoded_size(e) for e in errors) <= budget:
        return body
    room = budget - ERROR_ENTRY_BYTES * len(outputs)  # every output could end up an error
    failed = {index: error for index, error in errors}
    used = 0
    for index, (output, size) in enumerate(zip(outputs, sizes, strict=True)):
        if output is None:
            continue
        if used + size <= room:
            used += size
            continue
        outputs[index] = None
        failed[index] = _not_fitting(size, budget, settings)
    return {**body, "outputs": outputs, "errors": [[i, failed[i]] for i in sorted(failed)]}
