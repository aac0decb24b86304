"""One wasmtime Engine per process, with fuel and epoch interruption, and the ticker that drives epochs.

Build it after fork (Celery's `worker_process_init`): an Engine and its threads do not survive `fork()`.
Nothing increments the epoch unless the ticker runs, so a deadline without it would never fire.
"""

from __future__ import annotations

import threading
import time
from importlib.metadata import version

import wasmtime

WASMTIME_VERSION = version("wasmtime")


# Linear memory set-up, tuned for many short-lived instances (a fresh Store and instance per job):
# - a 64 MiB virtual reservation (the default memory cap) with a 64 KiB guard, instead of wasmtime's 4 GiB +
#   32 MiB, so that creating and dropping an instance maps and unmaps far less; compiled code then checks
#   bounds explicitly (a compare per access: a little slower for heavy compute, nothing for short calls), and
#   a memory allowed to grow past 64 MiB is moved (copied) when it does;
# - data segments copied at instantiation instead of mapped copy-on-write from an image, which for small
#   modules is cheaper than setting up and tearing down the mapping.
# Together they take about a quarter off instantiate + call + drop (bench/sandbox_call.py). Compiled code
# depends on them, so they are part of the precompiled cache key.
MEMORY_RESERVATION = 64 * 1024 * 1024
MEMORY_GUARD = 64 * 1024
MEMORY_INIT_COW = False


def engine_fingerprint(*, parallel_compilation: bool = False) -> str:
    """What a precompiled artifact depends on besides the module bytes: the runtime and engine settings."""
    return (
        f"wasmtime-{WASMTIME_VERSION};fuel;epoch;par={int(parallel_compilation)};"
        f"res={MEMORY_RESERVATION};guard={MEMORY_GUARD};cow={int(MEMORY_INIT_COW)}"
    )


def make_engine(*, parallel_compilation: bool = False) -> wasmtime.Engine:
    """An Engine that meters fuel and checks epoch deadlines; every Store made from it must set both."""
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    # Off by default: compiling on a thread pool in a process that later forks can hang the child.
    config.parallel_compilation = parallel_compilation
    config.memory_reservation = MEMORY_RESERVATION
    config.memory_guard_size = MEMORY_GUARD
    config.memory_init_cow = MEMORY_INIT_COW
    return wasmtime.Engine(config)


class EpochTicker:
    """A daemon thread that increments the engine's epoch every `tick_ms` milliseconds.

    A call's deadline is expressed in ticks: `deadline_ticks(timeout_ms)` rounds up, plus one tick so that
    a call never gets less than its timeout.
    """

    def __init__(self, engine: wasmtime.Engine, *, tick_ms: int) -> None:
        self.engine = engine
        self.tick_ms = tick_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def deadline_ticks(self, timeout_ms: int) -> int:
        return -(-timeout_ms // self.tick_ms) + 1

    def start(self) -> EpochTicker:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="wasmq-epoch-ticker", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        # Count ticks against the monotonic clock: if the thread was held up (GIL, scheduler), it catches up,
        # so the epoch measures wall time rather than how often this thread got to run.
        interval = self.tick_ms / 1000.0
        started = time.monotonic()
        done = 0
        while not self._stop.wait(max(0.0, started + (done + 1) * interval - time.monotonic())):
            due = int((time.monotonic() - started) / interval)
            while done < due:
                self.engine.increment_epoch()
                done += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
