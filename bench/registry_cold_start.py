"""From `wasmq modules add` to the first job served, on nodes that have never seen the module.

    .venv/bin/python bench/registry_cold_start.py [--rounds 3] [--quick]

Two worker nodes (one prefork process each, an empty precompiled cache each, no module file) run on one
Redis: one loads the compiled artifact the publisher shared through the registry (WASMQ_SHARED_ARTIFACTS=1),
the other compiles the module itself. Each round publishes two fresh modules (new bytes: nobody has seen or
compiled them), the 10 KB Rust greeting and a 2 MB synthetic greeter that takes about a second to compile,
and times, for each node: `add` (the bounded check in a child process, storing the bytes and the artifact),
then the first job of that module on each node, from asking the node to its result (the producer resolves the
name; the node fetches the bytes, verifies them, compiles or deserializes, instantiates, calls, answers). The
first node is asked the moment `add` returns, the second right after; the order swaps every round. Medians.

Redis is embedded (started for the run) unless WASMQ_REDIS_URL is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.catalog.publish import Publication, publish  # noqa: E402
from worker.config import Settings  # noqa: E402
from worker.devtools.embedded_redis import given_or_embedded  # noqa: E402
from worker.devtools.node import WorkerNode  # noqa: E402
from worker.devtools.synthetic import costly_greeter, labelled  # noqa: E402
from worker.producer.client import Client  # noqa: E402

GREETING = ROOT / "modules" / "greeting" / "greeting.wasm"
HEAVY = (400, 500)  # functions x instructions of the synthetic module: about 2 MB, about a second to compile


def first_served(client: Client, module: str, timeout: float = 120) -> float:
    started = time.monotonic()
    while True:
        outcome = client.submit(module, "greet", "first").outcome(timeout=timeout)
        if outcome.error is None:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{module} never served: {outcome.error.to_dict()}")
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else args.rounds
    tmp = Path(tempfile.mkdtemp(prefix="wasmq-bench-registry-"))
    heavy = costly_greeter(*HEAVY)
    sources = {"greeting 10 KB": GREETING.read_bytes(), f"heavy {len(heavy) // 1024} KB": heavy}
    with given_or_embedded(os.environ.get("WASMQ_REDIS_URL")) as (url, _):
        base = Settings(redis_url=url, manifests=(), cache_dir=None)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WASMQ_")}
        nodes: dict[str, tuple[WorkerNode, Client]] = {}
        try:
            for shared in ("shared", "compiled"):
                settings = base.with_(queue=f"wasmq-bench-registry-{shared}-{uuid.uuid4().hex[:6]}")
                node_env = {
                    **env, **settings.to_env(), "WASMQ_CACHE_DIR": str(tmp / f"cache-{shared}"),
                    "WASMQ_SHARED_ARTIFACTS": "1" if shared == "shared" else "0",
                }  # fmt: skip
                client = Client(settings)
                node = WorkerNode(node_env, log_dir=tmp, concurrency=1, name=f"bench-{shared}")
                node.start(client)
                nodes[shared] = (node, client)
            figures: dict[tuple[str, str], list[float]] = {}
            for round_ in range(rounds):
                for label, wasm in sources.items():
                    name = f"bench-{uuid.uuid4().hex[:8]}"
                    path = tmp / f"{name}.wasm"
                    path.write_bytes(labelled(wasm, name))
                    started = time.monotonic()
                    publish(base, path, Publication(name=name, version="1.0.0", functions=["greet:packed"]))
                    figures.setdefault((label, "add"), []).append(time.monotonic() - started)
                    order = ["shared", "compiled"] if round_ % 2 == 0 else ["compiled", "shared"]
                    for which in order:  # each timed from when it is asked, so the order costs neither
                        figures.setdefault((label, which), []).append(first_served(nodes[which][1], name))
        finally:
            for node, client in nodes.values():
                client.close()
                node.stop()
    print(f"{'module':16} {'add (check+store)':>18} {'first job, shared artifact':>27} {'first job, compiling':>21}")
    for label in sources:
        row = [statistics.median(figures[(label, key)]) for key in ("add", "shared", "compiled")]
        print(f"{label:16} {row[0]:17.2f}s {row[1]:26.3f}s {row[2]:20.3f}s")
    print(f"({rounds} round(s), medians; first job = from asking the node to its result, after add returned)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
