"""Reliability scenarios: real Redis, real worker processes, things dying on purpose.

Each scenario gets a queue of its own (so its dead-letter queue and leftovers are its own), a short node
timeout so that liveness hands back the messages of a killed worker within seconds (and a short visibility
timeout as the backstop), unless it asks for the defaults, and reports its figures: jobs submitted, completed,
duplicated, lost, dead-lettered, redelivered, and where something was lost on purpose, the seconds until the
system had recovered. The table is printed at the end of the run.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import MANIFESTS
from tests.support.workers import WorkerProcess, env_for
from worker.config import Settings
from worker.connections import connect
from worker.keys import HOLDERS_KEY
from worker.monitoring import nodes
from worker.monitoring.nodes import DeadNode
from worker.outcome import Outcome
from worker.producer.client import Client
from worker.queue.dead_letters import DeadLetters

FIGURES: list[dict[str, Any]] = []
VISIBILITY_S = 20
NODE_TIMEOUT_S = 3.0


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    tr = terminalreporter
    tr.section("reliability figures")
    columns = ("submitted", "completed", "duplicated", "lost", "dead", "redelivered", "resent", "recovery s")
    tr.write_line(f"{'scenario':46} " + " ".join(f"{c:>11}" for c in columns))
    for row in FIGURES:
        tr.write_line(f"{row['scenario']:46} " + " ".join(f"{_cell(row.get(c)):>11}" for c in columns))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


@dataclass
class Scenario:
    """One scenario's queue, settings, worker environment and the workers it started."""

    name: str
    settings: Settings
    env: dict[str, str]
    log_dir: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def client(self) -> Client:
        return Client(self.settings)

    def dead(self) -> DeadLetters:
        return DeadLetters.for_settings(self.settings)

    def redis(self) -> redis.Redis:
        return connect(self.settings.broker, sentinel=self.settings.sentinel)

    def declared_dead(self, worker: WorkerProcess, timeout: float = 120) -> DeadNode:
        """Wait until `worker` is recorded as declared dead for this scenario's queue; that event."""
        deadline = time.monotonic() + timeout
        with self.redis() as client:
            while True:
                found = [e for e in nodes.read(client, self.settings.queue, 50).recent if e.name == worker.node]
                if found:
                    return found[0]
                assert time.monotonic() < deadline, f"{worker.node} was never declared dead"
                time.sleep(0.05)

    def freeze_holding(self, worker: WorkerProcess, timeout: float = 60) -> set[str]:
        """SIGSTOP `worker`'s whole process group at a moment it holds unacknowledged messages (recorded as
        its own), and leave it stopped: from then on it is as dead as after a SIGKILL, and surely leaves
        messages behind. The delivery tags it holds."""
        assert worker.proc is not None
        mine = f"{worker.node}#".encode()
        deadline = time.monotonic() + timeout
        with self.redis() as client:
            while True:
                os.killpg(worker.proc.pid, signal.SIGSTOP)
                held = {t.decode() for t, n in client.hscan_iter(HOLDERS_KEY, count=1000) if n.startswith(mine)}
                if held:
                    return held
                os.killpg(worker.proc.pid, signal.SIGCONT)
                assert time.monotonic() < deadline, f"{worker.node} never held a message"
                time.sleep(0.003)

    def held(self) -> int:
        """Unacknowledged messages of this scenario's queue and its batch lane still recorded (kombu's
        `unacked` hash)."""
        lanes = self.settings.lanes
        with self.redis() as client:
            return sum(1 for _, raw in client.hscan_iter("unacked", count=1000) if _routed_to(raw, lanes))

    def start_worker(self, client: Client, concurrency: int = 2, env: dict[str, str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(env or self.env, log_dir=self.log_dir, concurrency=concurrency, name=self.name)
        worker.start(client)
        self.workers.append(worker)
        return worker

    def deliveries(self) -> int:
        """How often any worker of this scenario received a task message (from their logs)."""
        return sum(w.log_text(limit=None).count("] received") for w in self.workers)

    def report(
        self,
        *,
        submitted: int,
        outcomes: list[Outcome],
        progress_done: int,
        dead: int,
        recovery_s: float | None = None,
        resent: int | None = None,
    ) -> dict[str, Any]:
        """Record this scenario's figures; `outcomes` are what the producer got back (one per input);
        `recovery_s`: from the failure to its repair (a dead node's messages handed back, a new master);
        `resent`: messages the producer found lost and sent again (`ResentCounter`)."""
        row = {
            "scenario": self.name,
            "submitted": submitted,
            "completed": len(outcomes),
            "duplicated": max(0, progress_done - submitted),
            "lost": submitted - len(outcomes) - dead if not outcomes else submitted - len(outcomes),
            "dead": dead,
            "redelivered": max(0, self.deliveries() - self.messages),
            "resent": resent,
            "recovery s": recovery_s,
        }
        FIGURES.append(row)
        return row

    messages: int = 0


def build_scenario(
    name: str, redis_url: str, cache_dir: Path, log_dir: Path, *, defaults: bool = False, **changes: Any
) -> Scenario:
    """Settings and worker environment for one scenario on `redis_url`, with a queue of its own: the short
    timeouts of the suite, or every default (`defaults`), then `changes`."""
    queue = f"wasmq-rel-{uuid.uuid4().hex[:8]}"
    settings = Settings(redis_url=redis_url, queue=queue, manifests=MANIFESTS, cache_dir=cache_dir)
    if not defaults:
        settings = settings.with_(
            visibility_timeout_s=VISIBILITY_S,
            node_timeout_s=NODE_TIMEOUT_S,
            task_time_limit_s=5,
            time_limit_margin_s=8.0,
            stall_check_s=5.0,
            retry_backoff_s=0.2,
            retry_backoff_max_s=2.0,
        )
    settings = settings.with_(**changes)
    return Scenario(name=name, settings=settings, env=env_for(settings), log_dir=log_dir)


@pytest.fixture
def scenario(request: pytest.FixtureRequest, redis_url: str, cache_dir: Path, tmp_path: Path) -> Iterator[Scenario]:
    sc = build_scenario(request.node.name.removeprefix("test_"), redis_url, cache_dir, tmp_path)
    try:
        yield sc
    finally:
        for worker in sc.workers:
            worker.stop()
        sc.dead().purge()


class ResentCounter(logging.Handler):
    """Counts the messages this process's producers found lost and sent again (worker/producer/client.py)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "sending it again" in record.getMessage():
            self.count += 1

    def __enter__(self) -> ResentCounter:
        logging.getLogger("wasmq.client").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("wasmq.client").removeHandler(self)


def _routed_to(raw: bytes, queues: tuple[str, ...]) -> bool:
    try:
        return bool(json.loads(raw)[2] in queues)
    except (ValueError, IndexError, TypeError):
        return False


class BackgroundBatch:
    """`client.map` in a thread, so the test can break things while it runs."""

    def __init__(self, client: Client, module: str, function: str, inputs: list[str], **kw: Any) -> None:
        self.done = 0
        self.outcomes: list[Outcome] | None = None
        self.error: BaseException | None = None
        self.started = threading.Event()

        def progress(done: int, total: int) -> None:
            self.done = done
            self.started.set()

        def run() -> None:
            try:
                self.outcomes = client.map(module, function, inputs, progress=progress, **kw)
            except BaseException as exc:  # reported by join()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def wait_until(self, predicate: Callable[[int], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.done):
            if self.error is not None:
                raise self.error
            assert time.monotonic() < deadline, f"batch stuck at {self.done}"
            time.sleep(0.02)

    def join(self, timeout: float = 240) -> list[Outcome]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"batch did not finish ({self.done} done)"
        if self.error is not None:
            raise self.error
        assert self.outcomes is not None
        return self.outcomes
