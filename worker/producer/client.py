"""The producer API: submit one call, or map a function over many inputs in chunked messages (streamed:
worker/producer/batch.py).

Everything a producer can get wrong (unknown module or function, limits above the module's maximum,
non-text input) is refused here, before anything is enqueued.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.result import AsyncResult
from celery.states import SUCCESS

from .. import chunk_result
from ..catalog import ModuleCatalog
from ..config import Settings, get_settings
from ..connections import CONNECTION_ERRORS, connect, is_redis_url, redact
from ..errors import BrokerUnavailable, InvalidInput, WasmqError
from ..keys import CALL_TASK
from ..outcome import Outcome, to_error
from ..queue.app import make_app
from ..queue.contract import MAX_CHUNK_ITEMS
from ..spec import Limits
from . import chunks
from .batch import BatchStream
from .lost import find_lost
from .results import ResultListener, stored_meta, wait_for_results
from .sizing import ChunkSizer

Progress = Callable[[int, int], None]
log = logging.getLogger("wasmq.client")


@dataclass(frozen=True)
class Sent:
    """What was sent under one task id, kept so that a lost message can be sent again unchanged."""

    name: str
    args: list[Any]
    options: dict[str, Any]


class Job:
    """A submitted call; `get` waits for its output or raises its typed error."""

    def __init__(self, result: AsyncResult, client: Client, sent: Sent) -> None:
        self.result = result
        self.client = client
        self.sent = sent

    @property
    def id(self) -> str:
        return str(self.result.id)

    def outcome(self, timeout: float | None = None) -> Outcome:
        """Wait for the job to finish; its output or typed error (never raises the job's own error)."""
        found: dict[str, Any] = {}
        wait_for_results(
            self.result.app, [self.id], lambda _, meta: found.update(meta), timeout=timeout,
            describe=lambda: f" (job {self.id})", on_stall=self.client.resender({self.id: self.sent}),
            stall_s=self.client.settings.stall_check_s, listener=self.client.listener,
        )  # fmt: skip
        value = found.get("result")
        if found.get("status") == SUCCESS and isinstance(value, dict):
            meta = {k: value.get(k) for k in ("worker", "pid", "attempt", "job_id", "module")}
            return Outcome(ok=True, output=value.get("output"), usage=value.get("usage") or {}, meta=meta)
        return Outcome.failed(to_error(value))

    def get(self, timeout: float | None = None) -> str:
        outcome = self.outcome(timeout)
        if outcome.error is not None:
            raise outcome.error
        return str(outcome.output)


class Client:
    """Sends jobs to the queue named in `settings`; one per producer process."""

    def __init__(self, settings: Settings | None = None, *, catalog: ModuleCatalog | None = None) -> None:
        self.settings = settings or get_settings()
        # Names and limits come from the registry (cached, refreshed on change) and the seed manifests.
        self._own_catalog = catalog is None
        self.catalog = catalog or ModuleCatalog.from_settings(self.settings)
        self.app: Celery = make_app(self.settings, producer=True)
        # Published results wake a waiting producer at once; the result keys stay the truth (results.py).
        self.listener = ResultListener(self.app)

    def close(self) -> None:
        self.listener.close()
        self.app.close()
        if self._own_catalog:
            self.catalog.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self, module: str, function: str, limits: dict[str, Any] | None) -> Limits:
        """Resolve the module and function and the effective limits, or raise the typed error."""
        spec = self.catalog.resolve(module)
        spec.function(function)
        return spec.limits.narrowed(limits)

    def options(self, lim: Limits, items: int, budget_s: float | None = None) -> dict[str, Any]:
        """Celery's time limits for a message of `items` calls: a backstop above the epoch deadlines, the
        longest the calls can run (chunk_result.longest_run_s) plus a margin."""
        longest = chunk_result.longest_run_s(lim.timeout_ms, items, budget_s)
        hard = math.ceil(longest + self.settings.time_limit_margin_s)
        if hard >= self.settings.visibility_timeout_s:
            raise InvalidInput(
                f"{items} inputs at {lim.timeout_ms} ms each need a {hard} s time limit, above the broker's "
                f"visibility timeout of {self.settings.visibility_timeout_s} s: use smaller chunks"
            )
        soft = math.ceil(longest + self.settings.time_limit_margin_s / 2)
        return {"time_limit": hard, "soft_time_limit": soft, "queue": self.settings.queue}

    def send(self, sent: Sent, task_id: str | None = None) -> AsyncResult:
        try:
            return self.app.send_task(sent.name, args=sent.args, task_id=task_id, **sent.options)
        except CONNECTION_ERRORS as exc:
            raise BrokerUnavailable(redact(f"broker unreachable at {self.settings.broker}: {exc}")) from None

    def resender(self, sent: dict[str, Sent]) -> Callable[[set[str]], None]:
        """An `on_stall` callback that sends again, under the same id, those messages that were lost."""

        def on_stall(pending: set[str]) -> None:
            if not is_redis_url(self.settings.broker):
                return  # other brokers keep a message until it is acknowledged
            has_state = set(stored_meta(self.app, pending))
            with connect(self.settings.broker, sentinel=self.settings.sentinel) as broker:
                lost = find_lost(broker, self.settings.lanes, pending, has_state)
            for task_id in sorted(lost):
                log.warning(
                    "job %s vanished from the broker (no result, not queued, not held); sending it again", task_id
                )
                self.send(sent[task_id], task_id=task_id)

        return on_stall

    def submit(self, module: str, function: str, input: str, **limits: int) -> Job:
        """Enqueue one call; limits (fuel, timeout_ms, memory_mb, ...) may only lower the module's."""
        lim = self.check(module, function, limits)
        if not isinstance(input, str):
            raise InvalidInput(f"input must be a string, not {type(input).__name__}")
        cost, budget = chunks.input_cost(input), chunks.message_budget(self.settings)
        if cost > budget:
            raise chunks.too_large(0, cost, budget, self.settings)
        sent = Sent(CALL_TASK, [module, function, input, limits or None], self.options(lim, 1))
        return Job(self.send(sent), self, sent)

    def imap(
        self,
        module: str,
        function: str,
        inputs: Iterable[str | WasmqError],
        *,
        chunk_size: int | None = None,
        window: int | None = None,
        timeout: float | None = None,
        usage: str = chunk_result.LEAN,
        **limits: int,
    ) -> Iterator[Outcome]:
        """Run `function` over `inputs` (any iterable, read lazily) and yield each outcome in input order as
        soon as it is known, with at most `window` chunks in flight (worker/producer/batch.py). Chunks are
        sized to about WASMQ_CHUNK_TARGET_S each unless `chunk_size` fixes them; `usage="items"` asks for
        each item's usage (by default a chunk reports one usage for all its items). An input that is a
        `WasmqError` (say, a line that could not be read) is passed through as that input's outcome."""
        return iter(self.stream(module, function, inputs, chunk_size=chunk_size, window=window, timeout=timeout,
                                usage=usage, limits=limits))  # fmt: skip

    def stream(
        self, module: str, function: str, inputs: Iterable[str | WasmqError], *, chunk_size: int | None = None,
        window: int | None = None, timeout: float | None = None, usage: str = chunk_result.LEAN,
        limits: dict[str, int] | None = None,
    ) -> BatchStream:  # fmt: skip
        """`imap`'s batch itself: iterate it for outcomes, or `slots()` for a whole chunk at a time (what
        `wasmq batch` writes its rows from, worker/producer/slots.py); `tally` counts what is done."""
        if chunk_size is not None and not 0 < chunk_size <= MAX_CHUNK_ITEMS:
            raise InvalidInput(f"chunk_size must be positive and at most {MAX_CHUNK_ITEMS} (a worker's largest "
                               f"message), not {chunk_size}")  # fmt: skip
        if usage not in chunk_result.USAGE_SHAPES:
            raise InvalidInput(f"usage must be one of {', '.join(chunk_result.USAGE_SHAPES)}, not {usage!r}")
        size = window if window is not None else self.settings.batch_window
        if size <= 0:
            raise InvalidInput(f"window must be positive, not {size}")
        return BatchStream(
            self, module, function, inputs, sizer=ChunkSizer(self.settings, chunk_size), window=size,
            limits=limits or None, usage=usage, timeout=timeout,
        )  # fmt: skip

    def map(
        self,
        module: str,
        function: str,
        inputs: Sequence[str],
        *,
        chunk_size: int | None = None,
        progress: Progress | None = None,
        timeout: float | None = None,
        **limits: int,
    ) -> list[Outcome]:
        """`imap` over a sequence, every outcome in a list, in input order; a non-string input is refused
        before anything is sent."""
        for index, item in enumerate(inputs):
            if not isinstance(item, str):
                raise InvalidInput(f"input {index} must be a string, not {type(item).__name__}")
        outcomes: list[Outcome] = []
        if progress:
            progress(0, len(inputs))
        stream = self.stream(module, function, inputs, chunk_size=chunk_size, timeout=timeout, limits=limits)
        for outcome in stream:
            outcomes.append(outcome)
            if progress:
                progress(len(outcomes), len(inputs))
        return outcomes
