"""A batch as a stream: inputs read lazily, a bounded window of chunks in flight, outcomes in input order.

`BatchStream` takes inputs from any iterable (a generator over a file of any length), cuts them into chunks
(by count, sizing.py, and by encoded size, chunks.py), keeps at most `window` chunks sent but not yet handed
to the caller, and yields each input's outcome as soon as every input before it has one. So the producer
holds at most `window` chunks of inputs and outputs, whatever the batch's length (back-pressure: a caller that
reads slowly stops the sending). Chunk results are read by polling their keys (one MGET for the window) and
deleted once read; at the end the batch leaves one summary record (`wasmq:batch:<id>`, for a day).

A chunk of more than one step (`chunk_result.STEP` inputs) carries the time budget `WASMQ_CHUNK_BUDGET_S`:
the inputs a worker did not reach within it are sent again in the same slot. Items whose outputs did not fit
in their chunk's result (`ResultTooLarge`) are sent again in smaller chunks (chunks.repack) in the same slot,
at most `MAX_RESULT_RERUNS` times. A message that vanished from the broker (lost.py) is sent again under its
id. An input that is not a string, or that alone exceeds the message limit, gets its own `InvalidInput`
outcome in its place; a `WasmqError` given as an input is passed through as that input's outcome (a line of a
file that could not be read).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from celery.states import SUCCESS

from .. import chunk_result
from ..connections import CONNECTION_ERRORS
from ..errors import InvalidInput, JobTimeout, ResultTooLarge, WasmqError
from ..keys import CALL_MANY_TASK, KEY_PREFIX
from ..outcome import Outcome, to_error
from . import chunks
from .results import forget, read_keys
from .sizing import ChunkSizer
from .slots import Slot

if TYPE_CHECKING:
    from .client import Client, Sent

MAX_RESULT_RERUNS = 3  # rounds of sending again the items whose outputs did not fit in their chunk's result
POLL_START_S, POLL_MAX_S = 0.001, 0.05
SUMMARY_PREFIX = f"{KEY_PREFIX}batch:"
_END = object()  # no more inputs (None is an input like any other: a wrong one)
META_KEYS = ("worker", "pid", "attempt", "job_id")  # what a chunk's result says about who answered it


@dataclass
class _Part:
    """One message in flight: which positions of its slot it carries, and in which round."""

    slot: Slot
    positions: list[int]
    sent: Sent
    round: int = 0


@dataclass
class Tally:
    """What a batch did so far: items done, failures by type."""

    done: int = 0
    failed: Counter[str] = field(default_factory=Counter)

    def count(self, slot: Slot) -> None:
        self.done += len(slot)
        self.failed.update(error.type for error in slot.errors.values())


class BatchStream:
    def __init__(
        self, client: Client, module: str, function: str, inputs: Iterable[str | WasmqError], *,
        sizer: ChunkSizer, window: int, limits: dict[str, int] | None, usage: str, timeout: float | None,
    ) -> None:  # fmt: skip
        self.client, self.module, self.function = client, module, function
        self.settings = client.settings
        self.lim = client.check(module, function, limits)
        self.limits, self.usage, self.sizer = limits, usage, sizer
        self.window = max(1, window)
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout
        self.id = uuid.uuid4().hex
        self.tally = Tally()
        self._source = iter(inputs)
        self._held: object = _END  # an input read but left for the next chunk
        self._index = 0  # inputs read so far
        self._exhausted = False
        self._slots: deque[Slot] = deque()
        self._parts: dict[str, _Part] = {}
        self._options: dict[int, dict[str, Any]] = {}
        self._message_bytes = chunks.message_budget(self.settings)
        self.budget_s = self.settings.chunk_budget_s
        largest = sizer.largest
        client.options(self.lim, largest, self._budget_for(largest))  # limits that cannot be: refused now
        self.started = time.time()
        self._down_since: float | None = None  # when the result backend became unreachable

    def __iter__(self) -> Iterator[Outcome]:
        for slot in self.slots():
            yield from slot.outcomes()

    def slots(self) -> Iterator[Slot]:
        """Each chunk's slot, in input order, as soon as all its inputs are answered (and those before)."""
        delay, last_progress = POLL_START_S, time.monotonic()
        while True:
            self._fill()
            while self._slots and self._slots[0].done:
                slot = self._slots.popleft()
                self.tally.count(slot)
                yield slot
            if not self._slots and self._exhausted:
                self._store_summary()
                return
            if self.deadline is not None and time.monotonic() >= self.deadline:
                raise JobTimeout(f"the batch did not finish within {self.timeout} s ({self.tally.done} done)")
            if self._collect():
                delay, last_progress = POLL_START_S, time.monotonic()
                continue
            if time.monotonic() - last_progress >= self.settings.stall_check_s:
                last_progress = time.monotonic()
                self.client.resender({i: p.sent for i, p in self._parts.items()})(set(self._parts))
            time.sleep(delay)
            delay = min(POLL_MAX_S, delay * 2)

    # -- sending -----------------------------------------------------------------------------------------

    def _next_input(self) -> object:
        """The next input (anything a caller's iterable yields), or `_END`."""
        if self._held is not _END:
            item, self._held = self._held, _END
            return item
        item = next(self._source, _END)
        if item is _END:
            self._exhausted = True
        return item

    def _fill(self) -> None:
        """Read and send chunks until the window is full or the inputs run out. A refused input takes its
        place in the chunk's slot with its outcome already known, and is not sent."""
        while not self._exhausted and len(self._slots) < self.window:
            limit = chunks.max_items(self.settings, self.sizer.size())
            texts: list[str] = []
            refused: dict[int, WasmqError] = {}
            foreign: set[int] = set()
            positions: list[int] = []
            used = 0
            while len(positions) < limit:
                item = self._next_input()
                if item is _END:
                    break
                cost, error = self._measure(item)
                if error is None:
                    if positions and used + cost > self._message_bytes:
                        self._held = item
                        break
                    positions.append(len(texts))
                    used += cost
                    texts.append(item)  # type: ignore[arg-type]
                else:
                    refused[len(texts)] = error
                    if not isinstance(item, str):
                        foreign.add(len(texts))
                    texts.append(item if isinstance(item, str) else "")
                self._index += 1
            if texts:
                slot = Slot(texts, refused, foreign)
                self._slots.append(slot)
                if positions:
                    self._send(slot, positions, 0)

    def _measure(self, item: object) -> tuple[int, WasmqError | None]:
        """An input's cost in a message (chunks.input_cost), or why it cannot be sent."""
        if isinstance(item, WasmqError):
            return 0, item
        if not isinstance(item, str):
            return 0, InvalidInput(f"input {self._index} must be a string, not {type(item).__name__}")
        cost = chunks.input_cost(item)
        budget = self._message_bytes
        return cost, chunks.too_large(self._index, cost, budget, self.settings) if cost > budget else None

    def _send(self, slot: Slot, positions: list[int], round: int) -> None:
        from .client import Sent

        items = len(positions)
        options = self._options.get(items)
        if options is None:
            # argsrepr: what monitors show for the arguments. Celery would build it with a saferepr walk of the
            # inputs for every message (about 1 ms for 500 of them); this says the same in a few characters.
            shown = f"[{self.module!r}, {self.function!r}, <{items} inputs>, {self.limits!r}]"
            options = {**self.client.options(self.lim, items, self._budget_for(items)),
                       "queue": self.settings.batch_lane, "argsrepr": shown}  # fmt: skip
            self._options[items] = options
        inputs = [slot.inputs[p] for p in positions]
        args: list[Any] = [self.module, self.function, inputs, self.limits, self.usage, self._budget_for(items)]
        sent = Sent(CALL_MANY_TASK, args, options)
        task_id = self.client.send(sent).id
        self._parts[task_id] = _Part(slot, positions, sent, round)
        slot.open += 1

    def _budget_for(self, items: int) -> float | None:
        """A chunk's time budget: only for more inputs than one step (a single step always runs whole, so a
        budget would only lengthen its time limits)."""
        return self.budget_s if items > chunk_result.STEP else None

    # -- reading -----------------------------------------------------------------------------------------

    def _collect(self) -> bool:
        """Read the finished chunks of the window, fill in their outcomes, delete their results."""
        if not self._parts:
            return False
        ready, self._down_since = read_keys(self.client.app, set(self._parts), self._down_since)
        for task_id, stored in ready.items():
            part = self._parts.pop(task_id)
            part.slot.open -= 1
            self._answer(part, stored)
        forget(self.client.app, ready)
        return bool(ready)

    def _answer(self, part: _Part, stored: dict[str, Any]) -> None:
        value = stored.get("result")
        slot, positions = part.slot, part.positions
        if stored.get("status") != SUCCESS:
            slot.fail(positions, to_error(value))
            return
        answers = chunk_result.read(value, len(positions))
        if isinstance(answers, str):
            slot.fail(positions, to_error(answers))
            return
        assert isinstance(value, dict)
        self.sizer.observe(len(answers.outputs), value.get("seconds"))
        unreached = positions[len(answers.outputs) :]
        if unreached:  # the chunk's budget ran out before these: sent again, in the same round
            self._send(slot, unreached, part.round)
        overflow: dict[int, int] = {}
        if part.round < MAX_RESULT_RERUNS:
            for index, error in list(answers.errors.items()):
                if isinstance(error, ResultTooLarge):
                    size = error.details.get("encoded_bytes")
                    overflow[positions[index]] = size if isinstance(size, int) and size > 0 else 1
                    del answers.errors[index]
        slot.fill(positions, answers, {k: value.get(k) for k in META_KEYS})
        if overflow:
            for group in chunks.repack(slot.inputs, overflow, self.settings):
                self._send(slot, group, part.round + 1)

    def _store_summary(self) -> None:
        """The one record a finished batch leaves in Redis (its chunk results are deleted as they are read)."""
        summary = {
            "id": self.id, "module": self.module, "function": self.function, "total": self.tally.done,
            "failed": sum(self.tally.failed.values()), "failed_by_type": dict(self.tally.failed),
            "started_at": round(self.started, 3), "finished_at": round(time.time(), 3),
        }  # fmt: skip
        backend = self.client.app.backend
        try:
            backend.client.set(f"{SUMMARY_PREFIX}{self.id}", json.dumps(summary), ex=self.settings.result_ttl_s)
        except CONNECTION_ERRORS:
            pass  # a summary is a courtesy: the outcomes were handed over already
