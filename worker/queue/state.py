"""Everything one worker process holds, in one object built after fork and never at import.

Celery's prefork pool forks children from a parent that must not own an Engine or a ticker thread (threads do
not survive fork). `WorkerState` is built in `worker_process_init` (the pool child), and lazily for pools that
send no such signal (solo, threads) and for the worker's main process. One idiom keeps it fork-safe: the state
remembers the pid that built it, and a forked child that finds another pid's state builds its own (the
parent's sandbox, counters and connections are the parent's). One catalog per process (seed manifests and
the shared registry) serves the sandbox, the metric labels and `wasmq status`. The main process of a worker
node also holds its liveness (heartbeat and reaper, worker/queue/liveness.py), started at `worker_init` and
stopped at `worker_shutdown`.
"""

from __future__ import annotations

import atexit
import gc
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..catalog import ModuleCatalog
from ..config import Settings, get_settings
from ..connections import is_redis_url
from ..errors import WasmqError
from ..monitoring.recorder import Recorder
from ..sandbox import Sandbox
from .dead_letters import DeadLetters
from .liveness import Liveness

T = TypeVar("T")
WARM_BUDGET_S = 2.0  # worker_process_init handlers must finish within 4 s
TIMEOUT_ECHO_S = 5.0  # Celery reports one hard time limit twice, milliseconds apart (worker/queue/job_signals.py)


class WorkerState:
    """The sandbox, catalog, job recorder and dead-letter writer of one process; the parts that cost something
    (an Engine and ticker, Redis connections, a flusher thread) are made on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        node: str | None = None,
        catalog: ModuleCatalog | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.settings = settings
        self.pid = os.getpid()
        self.node = node  # the worker's node name, known in the main process from `worker_init`
        self._own_catalog = catalog is None
        self.catalog = catalog or ModuleCatalog.from_settings(settings)
        self.started: dict[str, float] = {}  # job id -> when its run began (pool process)
        self.known_labels: set[tuple[str, str]] = set()  # (module, function) pairs the catalog has confirmed
        self.timed_out: dict[str, float] = {}  # job id -> when its hard time limit was counted (main process)
        self._sandbox: Sandbox | None = None
        self._recorder: Recorder | None = recorder
        self._dead_letters: DeadLetters | None = None
        self.liveness: Liveness | None = None  # main process of a worker node on a Redis broker
        self._lock = threading.Lock()

    @property
    def sandbox(self) -> Sandbox:
        artifacts = self.catalog.artifacts if self.settings.shared_artifacts else None
        return self._once("_sandbox", lambda: Sandbox(self.catalog, settings=self.settings, artifacts=artifacts))

    @property
    def recorder(self) -> Recorder:
        return self._once("_recorder", lambda: Recorder(self.settings))

    @property
    def dead_letters(self) -> DeadLetters:
        return self._once("_dead_letters", lambda: DeadLetters.for_settings(self.settings))

    def _once(self, attribute: str, build: Callable[[], T]) -> T:
        """The part held in `attribute`, built by the first thread that needs it."""
        found: T | None = getattr(self, attribute)
        if found is None:
            with self._lock:
                found = getattr(self, attribute)
                if found is None:
                    found = build()
                    setattr(self, attribute, found)
        return found

    def first_time_out(self, task_id: str) -> bool:
        """Whether this report of a hard time limit for `task_id` is the first (a job killed by the hard time
        limit is not retried, so a second report within seconds is the same kill)."""
        now = time.monotonic()
        if len(self.timed_out) > 1000:
            self.timed_out = {k: t for k, t in self.timed_out.items() if now - t < TIMEOUT_ECHO_S}
        seen = self.timed_out.get(task_id)
        self.timed_out[task_id] = now
        return seen is None or now - seen >= TIMEOUT_ECHO_S

    def warm(self) -> None:
        """Load the seed manifests' modules from the precompiled cache, within a time budget. Nothing is compiled
        here (a compile may take far longer than the 4 s Celery allows `worker_process_init`), and registry
        modules are fetched on first use: a process start must not wait for downloads (nor for Redis)."""
        sandbox = self.sandbox
        deadline = time.monotonic() + WARM_BUDGET_S
        for spec in self.catalog.seeds:
            if time.monotonic() > deadline:
                break
            try:
                sandbox.load(spec, compile=False)
            except WasmqError:
                pass  # reported per job as ModuleRejected; one bad module must not stop the worker

    def start_liveness(self, app: Any, queues: list[str]) -> None:
        """Start this node's heartbeat and reaper (worker main process, Redis brokers only)."""
        if self.liveness is None and is_redis_url(self.settings.broker):
            name = self.node or f"celery@{socket.gethostname()}"
            self.liveness = Liveness(self.settings, name=name, queues=queues, connection=app.connection_for_write)
            self.liveness.start()

    def flush(self) -> None:
        """Send the job counts this process holds (shutdown, exit)."""
        if self._recorder is not None:
            self._recorder.close()

    def close(self) -> None:
        if self.liveness is not None:
            self.liveness.stop()
            self.liveness = None
        self.flush()
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
        if self._own_catalog:
            self.catalog.close()


_state: WorkerState | None = None
_create_lock = threading.Lock()


def current() -> WorkerState:
    """This process's state (built on first use in each process)."""
    global _state
    state = _state
    if state is not None and state.pid == os.getpid():
        return state
    with _create_lock:
        if _state is None or _state.pid != os.getpid():
            _state = WorkerState(get_settings(), node=_state.node if _state is not None else None)
        return _state


def _reset_in_child() -> None:
    global _create_lock
    _create_lock = threading.Lock()  # a lock held by another thread at fork would never be released here


def on_process_init(**_: object) -> None:
    """`worker_process_init` (pool child): build this process's state and warm its sandbox."""
    current().warm()
    # What start-up built lives as long as the process: out of the collector's sight, so that the objects a
    # chunk makes (thousands of results) do not make every full collection walk them all again.
    gc.freeze()


def holder_node() -> str | None:
    """The node id this process records as the holder of the messages it takes: its liveness's (worker main
    process), else None. Never builds a state."""
    state = _state
    if state is None or state.pid != os.getpid() or state.liveness is None:
        return None
    return state.liveness.node_id


def on_worker_init(sender: Any = None, **_: object) -> None:
    """`worker_init` (main process): remember the node name, start the node's liveness before it consumes."""
    state = current()
    state.node = getattr(sender, "hostname", None)
    app = getattr(sender, "app", None)
    if app is not None:
        consume = getattr(getattr(app, "amqp", None), "queues", None)
        state.start_liveness(app, sorted(getattr(consume, "consume_from", None) or [state.settings.queue]))


def on_shutdown(**_: object) -> None:
    """`worker_process_shutdown` / `worker_shutdown`: flush counts and release the sandbox of this process."""
    state = _state
    if state is not None and state.pid == os.getpid():
        state.close()


os.register_at_fork(after_in_child=_reset_in_child)
atexit.register(on_shutdown)  # pool processes flush from `worker_process_shutdown` (they skip atexit)
