"""Test helpers that start and watch real `wasmq worker` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from worker.client import Client
from worker.config import Settings
from worker.processes import stop_process_group


def env_for(settings: Settings, **more: str) -> dict[str, str]:
    """A worker process's environment: ours without any WASMQ_* variable, then `settings` and `more`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMQ_")}
    return {**env, **settings.to_env(), **more}


class WorkerProcess:
    """A real worker (prefork pool) in its own process group, with a unique node name."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        log_dir: Path,
        concurrency: int = 2,
        name: str | None = None,
        prefix: list[str] | None = None,
    ) -> None:
        self.env = env
        self.concurrency = concurrency
        self.prefix = prefix or []  # e.g. ["ip", "netns", "exec", NS] to run the node in a namespace
        self.node = f"{name or 'test'}-{uuid.uuid4().hex[:6]}@localhost"
        self.log = log_dir / f"{self.node.split('@')[0]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, client: Client, timeout: float = 60.0) -> None:
        self.launch()
        self.wait_ready(client, timeout)

    def launch(self) -> None:
        cmd = [
            *self.prefix, sys.executable, "-m", "worker.cli", "worker",
            f"--concurrency={self.concurrency}", f"--hostname={self.node}", "--loglevel=INFO",
        ]  # fmt: skip
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, client: Client, timeout: float = 60.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_text()}")
            if client.app.control.ping(destination=[self.node], timeout=0.5):
                return
        self.stop()  # never leave a worker behind that no fixture will stop
        raise RuntimeError(f"worker {self.node} did not answer within {timeout} s:\n{self.log_text()}")

    def log_text(self, limit: int | None = 5000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text if limit is None else text[-limit:]

    def pool_pids(self, client: Client) -> list[int]:
        """The pids of the prefork pool's child processes, as the worker reports them."""
        inspect = client.app.control.inspect(destination=[self.node], timeout=5, limit=1)
        stats: dict[str, Any] = inspect.stats() or {}
        return sorted(stats[self.node]["pool"]["processes"])

    def kill_node(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole node (main process and pool children) at once, as a crash or OOM kill would."""
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=30)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None:
            return
        stop_process_group(self.proc, timeout)
