"""`wasmq demo`: the main job end to end on one machine.

Uses `WASMQ_REDIS_URL` when set; otherwise starts an embedded Redis of its own. Starts real worker
processes, runs a batch of greetings with a progress bar, prints results and a summary, and shuts
everything down (no stray processes, temporary files removed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from ..client import Client
from ..config import Settings
from ..embedded_redis import EmbeddedRedis
from ..errors import ConfigError
from ..processes import stop_process_group
from .progress import Stopwatch, progress_bar, summarize, summary_text

NAMES = ["Alice", "Bob", "Zoë", "José", "Ngozi", "Wei", "Ana María", "Søren", "Priya", "Ada"]
READY_TIMEOUT_S = 60.0


def start_worker(env: dict[str, str], concurrency: int, log: Path, name: str) -> subprocess.Popen[bytes]:
    """A `wasmq worker` in its own process group, logging to `log`."""
    cmd = [sys.executable, "-m", "worker.cli", "worker", f"--concurrency={concurrency}", f"--hostname={name}"]
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(client: Client, proc: subprocess.Popen[bytes], log: Path) -> list[str]:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"the worker exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        replies = client.app.control.ping(timeout=0.5)
        if replies:
            return [name for reply in replies for name in reply]
    raise ConfigError(f"no worker answered within {READY_TIMEOUT_S:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


def run(args: argparse.Namespace) -> int:
    if args.count <= 0 or args.concurrency <= 0:
        raise ConfigError("--count and --concurrency must be positive")
    with ExitStack() as stack:
        env = dict(os.environ)
        if not env.get("WASMQ_REDIS_URL"):
            redis = stack.enter_context(EmbeddedRedis())
            env["WASMQ_REDIS_URL"] = redis.url
            print(f"started an embedded Redis at {redis.url}")
        else:
            print(f"using Redis at {env['WASMQ_REDIS_URL']}")
        settings = Settings.from_env(env)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wasmq-demo-")))
        env.setdefault("WASMQ_CACHE_DIR", str(settings.cache_dir or ""))
        proc = start_worker(env, args.concurrency, workdir / "worker.log", f"demo-{os.getpid()}@%h")
        stack.callback(stop_process_group, proc, 20)
        client = stack.enter_context(Client(settings))
        nodes = wait_ready(client, proc, workdir / "worker.log")
        print(f"worker ready: {', '.join(nodes)} ({args.concurrency} processes)")
        names = [NAMES[i % len(NAMES)] if i < len(NAMES) else f"{NAMES[i % len(NAMES)]} {i}" for i in range(args.count)]
        watch = Stopwatch()
        with progress_bar("greeting", stream=sys.stdout) as progress:
            outcomes = client.map("greeting", "greet", names, progress=progress, timeout=300)
        summary = summarize(outcomes, watch.seconds)
        print("first results:")
        for name, outcome in list(zip(names, outcomes, strict=True))[:5]:
            print(f"  greet({name!r}) -> {outcome.output if outcome.ok else outcome.error}")
        served = Counter(f"{o.meta.get('worker')} pid {o.meta.get('pid')}" for o in outcomes)
        print("served by: " + ", ".join(f"{w} ({n} jobs)" for w, n in sorted(served.items())))
        print(summary_text(summary))
    print("stopped the worker" + (" and the embedded Redis" if not os.environ.get("WASMQ_REDIS_URL") else ""))
    return 0 if summary["failed"] == 0 else 1
