"""`wasmq demo`: the main job end to end on one machine.

Uses `WASMQ_REDIS_URL` when set; otherwise starts an embedded Redis of its own. Starts real worker
processes, runs a batch of greetings with a progress bar, prints results and a summary, and shuts
everything down (no stray processes, temporary files removed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from ..config import Settings
from ..connections import redact
from ..errors import ConfigError
from .common import SubParsers
from .progress import Stopwatch, progress_bar, summarize_outcomes, summary_text

NAMES = ["Alice", "Bob", "Zoë", "José", "Ngozi", "Wei", "Ana María", "Søren", "Priya", "Ada"]
READY_TIMEOUT_S = 60.0


def add_parser(sub: SubParsers) -> None:
    demo = sub.add_parser("demo", help="the main job end to end: Redis, workers, a batch of greetings")
    demo.add_argument("--count", type=int, default=2000, help="how many greetings")
    demo.add_argument("--concurrency", type=int, default=2)


def run(args: argparse.Namespace) -> int:
    from ..devtools.embedded_redis import EmbeddedRedis
    from ..devtools.node import WorkerNode
    from ..producer.client import Client

    if args.count <= 0 or args.concurrency <= 0:
        raise ConfigError("--count and --concurrency must be positive")
    with ExitStack() as stack:
        env = dict(os.environ)
        if not env.get("WASMQ_REDIS_URL"):
            redis = stack.enter_context(EmbeddedRedis())
            env["WASMQ_REDIS_URL"] = redis.url
            print(f"started an embedded Redis at {redis.url}")
        else:
            print(f"using Redis at {redact(env['WASMQ_REDIS_URL'])}")
        settings = Settings.from_env(env)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wasmq-demo-")))
        env.setdefault("WASMQ_CACHE_DIR", str(settings.cache_dir or ""))
        node = WorkerNode(env, log_dir=workdir, concurrency=args.concurrency, name=f"demo-{os.getpid()}")
        stack.callback(node.stop, 20)
        client = stack.enter_context(Client(settings))
        node.start(client, timeout=READY_TIMEOUT_S)
        print(f"worker ready: {node.node} ({args.concurrency} processes)")
        names = [NAMES[i % len(NAMES)] if i < len(NAMES) else f"{NAMES[i % len(NAMES)]} {i}" for i in range(args.count)]
        watch = Stopwatch()
        with progress_bar("greeting", stream=sys.stdout) as progress:
            outcomes = client.map("greeting", "greet", names, progress=progress, timeout=300)
        summary = summarize_outcomes(outcomes, watch.seconds)
        print("first results:")
        for name, outcome in list(zip(names, outcomes, strict=True))[:5]:
            print(f"  greet({name!r}) -> {outcome.output if outcome.ok else outcome.error}")
        served = Counter(f"{o.meta.get('worker')} pid {o.meta.get('pid')}" for o in outcomes)
        print("served by: " + ", ".join(f"{w} ({n} jobs)" for w, n in sorted(served.items())))
        print(summary_text(summary))
    print("stopped the worker" + (" and the embedded Redis" if not os.environ.get("WASMQ_REDIS_URL") else ""))
    return 0 if summary["failed"] == 0 else 1
