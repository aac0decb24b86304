"""One way to start a real worker node (main process and prefork pool) and to stop all of it again.

Used by `wasmq demo`, the benchmarks and the tests. A node runs in its own process group, so that a crash
can be simulated by signalling the whole group and nothing of it outlives `stop()`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from ..errors import ConfigError
from .processes import stop_process_group


def _control(target: Any) -> Any:
    """The remote-control handle of a `Client` or of a Celery app."""
    return getattr(target, "app", target).control


class WorkerNode:
    """`wasmq worker` (or any `command`) with a unique node name, logging to a file of its own."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        log_dir: Path,
        concurrency: int = 2,
        name: str | None = None,
        host: str = "localhost",
        node: str | None = None,
        prefix: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        command: Sequence[str] | None = None,
        loglevel: str = "INFO",
        cwd: Path | None = None,
    ) -> None:
        self.env = env
        self.concurrency = concurrency
        self.prefix = list(prefix)  # e.g. ["ip", "netns", "exec", NS] to run the node in a namespace
        self.node = node or f"{name or 'worker'}-{uuid.uuid4().hex[:6]}@{host}"
        self.log = log_dir / f"{self.node.split('@')[0]}.log"
        self.command = list(command) if command is not None else [
            sys.executable, "-m", "worker.cli", "worker", f"--concurrency={concurrency}",
            f"--hostname={self.node}", f"--loglevel={loglevel}", *extra_args,
        ]  # fmt: skip
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, client: Any, timeout: float = 60.0) -> float:
        """Launch and wait until the node answers a ping; the seconds that took."""
        self.launch()
        return self.wait_ready(client, timeout)

    def launch(self) -> None:
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [*self.prefix, *self.command], env=self.env, cwd=self.cwd, stdout=fh, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, client: Any, timeout: float = 60.0) -> float:
        """Block until the node answers a ping (`client`: a Client or a Celery app)."""
        assert self.proc is not None
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise ConfigError(f"worker {self.node} exited with {self.proc.returncode}:\n{self.log_text()}")
            if _control(client).ping(destination=[self.node], timeout=0.5):
                return time.monotonic() - started
        self.stop()  # never leave a worker behind that nobody will stop
        raise ConfigError(f"worker {self.node} did not answer within {timeout} s:\n{self.log_text()}")

    def log_text(self, limit: int | None = 5000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text if limit is None else text[-limit:]

    def pool_pids(self, client: Any) -> list[int]:
        """The pids of the prefork pool's child processes, as the worker reports them."""
        inspect = _control(client).inspect(destination=[self.node], timeout=5, limit=1)
        stats: dict[str, Any] = inspect.stats() or {}
        return sorted(stats[self.node]["pool"]["processes"])

    def kill_node(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole node (main process and pool children) at once, as a crash or OOM kill would."""
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.proc.wait(timeout=30)

    def pool_processes(self) -> list[psutil.Process]:
        """The node's processes below its main process (the prefork pool), for RSS and CPU readings."""
        try:
            return list(psutil.Process(self.proc.pid).children(recursive=True)) if self.proc else []
        except psutil.Error:
            return []

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by the whole node (its process group: main process and pool), from /proc."""
        if self.proc is None:
            return None
        total = 0
        try:
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[2]) == self.proc.pid:  # process group id: the node and its pool
                    total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
        except OSError:
            return None
        return total / os.sysconf("SC_CLK_TCK")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is not None:
            stop_process_group(self.proc, timeout)
