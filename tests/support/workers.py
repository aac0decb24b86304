"""Real worker processes for the tests: their environment from a `Settings`, and the one node launcher."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable

from worker.config import Settings
from worker.devtools.node import WorkerNode

WorkerProcess = WorkerNode  # the tests' name for it


def env_for(settings: Settings, **more: str) -> dict[str, str]:
    """A worker process's environment: ours without any WASMQ_* variable, then `settings` and `more`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMQ_")}
    return {**env, **settings.to_env(), **more}


def stop_all(nodes: Iterable[WorkerNode]) -> None:
    """Warm shutdowns in parallel (SIGTERM to every live node first), then wait for each."""
    nodes = list(nodes)
    for node in nodes:
        if node.alive():
            assert node.proc is not None
            node.proc.send_signal(signal.SIGTERM)
    for node in nodes:
        node.stop()
