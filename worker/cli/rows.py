"""The files of `wasmq batch`: input lines read lazily, JSON-lines rows out, and resuming from those rows.

A row is written as soon as its turn comes, so an interrupted batch leaves a valid prefix: complete rows for
inputs 0..k-1 and, after a SIGKILL, perhaps the start of one more. `resume` keeps the complete rows that match
the input (same index, same input text), cuts the file after the last of them, and tells how many inputs are
done; the batch goes on from there and appends. Neither side holds the file in memory.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from json.encoder import encode_basestring
from pathlib import Path
from typing import IO, Any

from ..errors import InvalidInput, UsageError
from ..outcome import Outcome
from ..producer.slots import Slot

Line = str | InvalidInput  # an input, or why its line could not be one


@contextmanager
def input_lines(path: str) -> Iterator[Iterator[Line]]:
    """The lines of `path` ('-': stdin) as inputs, one at a time; a line that is not UTF-8 is its own
    `InvalidInput` (the others still run)."""
    try:
        raw: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        yield _decode(raw)
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()


def _decode(raw: IO[bytes]) -> Iterator[Line]:
    for number, raw_line in enumerate(raw, start=1):
        line = raw_line.removesuffix(b"\n").removesuffix(b"\r")
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield InvalidInput(f"line {number} is not valid UTF-8 (byte {exc.start})")


def count_lines(path: str) -> int | None:
    """How many inputs `path` holds (None for stdin): read once in large blocks, for the progress's ETA."""
    if path == "-":
        return None
    count, last = 0, b"\n"
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                count += block.count(b"\n")
                last = block[-1:]
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    return count + (last != b"\n")  # a last line without a final newline is a line too


def slot_rows(start: int, slot: Slot) -> str:
    """The rows of a chunk's inputs, the first numbered `start`. The common row (an output, no per-item
    usage) is written directly from the slot's lists: about a third of the cost of `json.dumps` on a dict,
    with no per-item object, which at a million rows a batch is much of a producer's time."""
    rows: list[str] = []
    tails: dict[int, str] = {}  # the end of a row, per message that answered (worker, attempt)
    for p, (text, output, meta) in enumerate(zip(slot.inputs, slot.outputs, slot.meta, strict=True)):
        if output is None or meta is None or slot.usages is not None:
            rows.append(row(start + p, slot.text(p), slot.outcome(p)))
            continue
        tail = tails.get(id(meta))
        if tail is None:
            tail = tails[id(meta)] = (
                f'"worker": {_json(meta.get("worker"))}, "attempt": {_json(meta.get("attempt"))}}}\n'
            )
        rows.append(f'{{"index": {start + p}, "input": {_text(text)}, "ok": true, "output": {_text(output)}, {tail}')
    return "".join(rows)


def row(index: int, item: str | None, outcome: Outcome) -> str:
    """One JSON line: the input (null if it was not text), its outcome, and which worker answered it after
    how many attempts."""
    line: dict[str, Any] = {"index": index, "input": item}
    if outcome.ok:
        line.update(ok=True, output=outcome.output)
        if outcome.usage:
            line["usage"] = outcome.usage
    else:
        assert outcome.error is not None
        line.update(ok=False, error=outcome.error.to_dict())
    line.update(worker=outcome.meta.get("worker"), attempt=outcome.meta.get("attempt"))
    return json.dumps(line, ensure_ascii=False) + "\n"


_text = encode_basestring  # a str as a JSON string, not ASCII-escaped (json.dumps(..., ensure_ascii=False))


def _json(value: Any) -> str:
    """A worker name or an attempt count as JSON (the usual types without json.dumps' overhead)."""
    if isinstance(value, str):
        return _text(value)
    if type(value) is int:
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def resume(out: Path, lines: Iterator[Line], *, source: str) -> int:
    """Keep the rows of `out` that answer the first inputs of `lines`, in order (consuming those inputs),
    cut `out` after the last of them, and return how many there are. A row for another input is a
    `UsageError`: the output file is not this batch's."""
    if not out.exists():
        return 0
    kept = end = 0
    with open(out, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # the start of a row that was being written when the batch was killed
            try:
                done = json.loads(raw)
            except ValueError:
                break
            if not isinstance(done, dict) or done.get("index") != kept or "ok" not in done:
                break
            item = next(lines, None)
            if item is None:
                raise UsageError(f"{out} has more rows than {source} has lines: it is not this batch's output")
            expected = item if isinstance(item, str) else None
            if done.get("input") != expected:
                raise UsageError(
                    f"row {kept} of {out} is for input {str(done.get('input'))[:60]!r}, but line {kept + 1} of "
                    f"{source} is {str(expected)[:60]!r}: it is not this batch's output"
                )
            kept += 1
            end += len(raw)
    with open(out, "r+b") as f:
        f.truncate(end)
    return kept
