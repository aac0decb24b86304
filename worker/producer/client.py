"""The producer API: submit one call, or map a function over many inputs in chunked messages.

Everything a producer can get wrong (unknown module or function, limits above the module's maximum,
non-text input) is refused here, before anything is enqueued.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.result import AsyncResult
from celery.states import SUCCESS

from ..catalog import ModuleCatalog
from ..config import Settings, get_settings
from ..connections import CONNECTION_ERRORS, connect, is_redis_url, redact
from ..errors import BrokerUnavailable, InvalidInput, ResultsMissing, ResultTooLarge
from ..keys import CALL_MANY_TASK, CALL_TASK
from ..outcome import Outcome, to_error
from ..queue.app import make_app
from ..spec import Limits
from . import chunks
from .lost import find_lost
from .results import ResultListener, stored_meta, wait_for_results

Progress = Callable[[int, int], None]
MAX_RESULT_RERUNS = 3  # rounds of sending again the items whose outputs did not fit in their chunk's result
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

    def _options(self, lim: Limits, items: int) -> dict[str, Any]:
        # Celery's limits are a backstop above the epoch deadline: a chunk may run its batch call and then
        # every item alone, so allow (items + 1) deadlines, plus a margin.
        budget = lim.timeout_ms / 1000.0 * (items + 1)
        hard = math.ceil(budget + self.settings.time_limit_margin_s)
        if hard >= self.settings.visibility_timeout_s:
            raise InvalidInput(
                f"{items} inputs at {lim.timeout_ms} ms each need a {hard} s time limit, above the broker's "
                f"visibility timeout of {self.settings.visibility_timeout_s} s: use smaller chunks"
            )
        soft = math.ceil(budget + self.settings.time_limit_margin_s / 2)
        return {"time_limit": hard, "soft_time_limit": soft, "queue": self.settings.queue}

    def _send(self, sent: Sent, task_id: str | None = None) -> AsyncResult:
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
                lost = find_lost(broker, self.settings.queue, pending, has_state)
            for task_id in sorted(lost):
                log.warning(
                    "job %s vanished from the broker (no result, not queued, not held); sending it again", task_id
                )
                self._send(sent[task_id], task_id=task_id)

        return on_stall

    def submit(self, module: str, function: str, input: str, **limits: int) -> Job:
        """Enqueue one call; limits (fuel, timeout_ms, memory_mb, ...) may only lower the module's."""
        lim = self.check(module, function, limits)
        if not isinstance(input, str):
            raise InvalidInput(f"input must be a string, not {type(input).__name__}")
        cost, budget = chunks.input_cost(input), chunks.message_budget(self.settings)
        if cost > budget:
            raise chunks.too_large(0, cost, budget, self.settings)
        sent = Sent(CALL_TASK, [module, function, input, limits or None], self._options(lim, 1))
        return Job(self._send(sent), self, sent)

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
        """Run `function` over `inputs` in chunks of at most `chunk_size` per message (fewer where the inputs
        are large: worker/producer/chunks.py); outcomes in input order. Items whose outputs did not fit in
        their chunk's result are sent again in smaller chunks."""
        lim = self.check(module, function, limits)
        size = self.settings.chunk_size if chunk_size is None else chunk_size
        if size <= 0:
            raise InvalidInput(f"chunk_size must be positive, not {size}")
        for index, item in enumerate(inputs):
            if not isinstance(item, str):
                raise InvalidInput(f"input {index} must be a string, not {type(item).__name__}")
        groups, refused = chunks.plan(inputs, size, self.settings)
        run = _BatchRun(self, module, function, inputs, limits=limits or None, progress=progress)
        for index, error in refused.items():
            run.finish(index, Outcome.failed(error))
        options = self._options(lim, max(map(len, groups), default=1))
        deadline = None if timeout is None else time.monotonic() + timeout
        for attempt in range(MAX_RESULT_RERUNS + 1):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            overflow = run.send(groups, options, timeout=left, last=attempt == MAX_RESULT_RERUNS)
            if not overflow:
                break
            groups = chunks.repack(inputs, overflow, self.settings)
        return run.outcomes()


class _BatchRun:
    """One `Client.map`: its outcomes so far, and its chunks in flight."""

    def __init__(self, client: Client, module: str, function: str, inputs: Sequence[str], *,
                 limits: dict[str, int] | None, progress: Progress | None) -> None:  # fmt: skip
        self.client, self.module, self.function, self.inputs, self.limits = client, module, function, inputs, limits
        self.progress = progress
        self.results: list[Outcome | None] = [None] * len(inputs)
        self.done = 0
        if progress:
            progress(0, len(inputs))

    def finish(self, index: int, outcome: Outcome) -> None:
        self.results[index] = outcome
        self.done += 1

    def send(self, groups: list[list[int]], options: dict[str, Any], *, timeout: float | None,
             last: bool) -> dict[int, int]:  # fmt: skip
        """Send `groups` as chunks and wait for them; returns the items to send again (index -> result bytes)."""
        client = self.client
        messages = [Sent(CALL_MANY_TASK, [self.module, self.function, [self.inputs[i] for i in group], self.limits],
                         options) for group in groups]  # fmt: skip
        sent = [client._send(message) for message in messages]
        group_of = {r.id: g for r, g in zip(sent, groups, strict=True)}
        by_id = {r.id: m for r, m in zip(sent, messages, strict=True)}
        overflow: dict[int, int] = {}

        def collect(task_id: str, stored: dict[str, Any]) -> None:
            group = group_of[task_id]
            value = stored.get("result")
            entries = value.get("results") if isinstance(value, dict) else None
            if isinstance(value, dict) and isinstance(entries, list) and len(entries) == len(group):
                meta = {k: value.get(k) for k in ("worker", "pid", "attempt", "job_id")}
                for index, entry in zip(group, entries, strict=True):
                    outcome = Outcome.from_entry(entry, meta)
                    resend = _result_bytes(outcome) if not last else None
                    if resend is not None:
                        overflow[index] = resend
                    else:
                        self.finish(index, outcome)
            else:
                short = f"chunk answered {len(entries)} of {len(group)}" if entries is not None else None
                error = to_error(value if short is None else short)
                for index in group:
                    self.finish(index, Outcome.failed(error))
            if self.progress:
                self.progress(self.done, len(self.inputs))

        wait_for_results(
            client.app, group_of, collect, timeout=timeout,
            describe=lambda: f" ({self.done} of {len(self.inputs)} done)", on_stall=client.resender(by_id),
            stall_s=client.settings.stall_check_s, listener=client.listener,
        )  # fmt: skip
        return overflow

    def outcomes(self) -> list[Outcome]:
        missing = [i for i, o in enumerate(self.results) if o is None]
        if missing:
            raise ResultsMissing(f"{len(missing)} batch results never arrived (first: input {missing[0]})")
        return [o for o in self.results if o is not None]


def _result_bytes(outcome: Outcome) -> int | None:
    """For an item answered `ResultTooLarge`: the size the worker reported for its result entry."""
    if not isinstance(outcome.error, ResultTooLarge):
        return None
    size = outcome.error.details.get("encoded_bytes")
    return int(size) if isinstance(size, int) and size > 0 else 1
