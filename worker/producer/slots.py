"""A chunk's place in a batch's output: its inputs, and their answers as the chunk's messages come back.

Answers are kept in lists by position, not as one object per item (at a million items a batch, per-item
objects were a third of a producer's time): `outputs[p]` (None where the input failed), `errors` by position,
`meta[p]` (which worker answered it after how many attempts, shared by the items of one message) and, for
the per-item result shape, `usages`. `outcome(p)` builds an item's `Outcome` for whoever wants one; the
batch command writes its rows from the lists directly (worker/cli/rows.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..chunk_result import Answers
from ..errors import WasmqError
from ..outcome import Outcome

Meta = dict[str, Any]


class Slot:
    """One chunk's inputs and what is known of them so far; `done` once no message for it is unanswered."""

    __slots__ = ("errors", "foreign", "inputs", "meta", "open", "outputs", "usages")

    def __init__(self, inputs: list[str], errors: dict[int, WasmqError], foreign: set[int]) -> None:
        self.inputs = inputs  # the text of each input ("" where the input was not a string)
        self.outputs: list[str | None] = [None] * len(inputs)
        self.errors = errors  # inputs refused before sending, then failures as they are answered
        self.meta: list[Meta | None] = [None] * len(inputs)
        self.usages: dict[int, dict[str, Any]] | None = None
        self.foreign = foreign  # positions whose input was not a string at all
        self.open = 0  # messages sent for this slot and not yet answered

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def done(self) -> bool:
        return self.open == 0

    def fail(self, positions: Sequence[int], error: WasmqError) -> None:
        """Every input of a message that failed as a whole gets its error."""
        for p in positions:
            self.errors[p] = error

    def fill(self, positions: Sequence[int], answers: Answers, meta: Meta) -> None:
        """The answers of a message that carried the inputs at `positions` (ascending), for as many of them
        as it answered."""
        count = len(answers.outputs)
        if count and positions[count - 1] - positions[0] == count - 1:  # the usual: a run of positions
            first = positions[0]
            self.outputs[first : first + count] = answers.outputs
            self.meta[first : first + count] = [meta] * count
        else:
            for p, output in zip(positions, answers.outputs, strict=False):
                self.outputs[p] = output
                self.meta[p] = meta
        for index, error in answers.errors.items():
            self.errors[positions[index]] = error
        if answers.usages is not None:
            usages = self.usages = self.usages if self.usages is not None else {}
            for p, usage in zip(positions, answers.usages, strict=False):
                usages[p] = usage

    def text(self, p: int) -> str | None:
        """Input `p` as it was given, or None if it was not a string."""
        return None if p in self.foreign else self.inputs[p]

    def outcome(self, p: int) -> Outcome:
        meta = self.meta[p] or {}
        error = self.errors.get(p)
        if error is not None:
            return Outcome(ok=False, error=error, meta=meta)
        usage = self.usages.get(p, {}) if self.usages is not None else {}
        return Outcome(ok=True, output=self.outputs[p], usage=usage, meta=meta)

    def outcomes(self) -> Iterator[Outcome]:
        return (self.outcome(p) for p in range(len(self.inputs)))
