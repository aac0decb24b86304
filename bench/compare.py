"""wasmq next to plain Celery, in one run, on the same Redis with the same worker settings (`wasmq bench`).

    .venv/bin/python bench/compare.py [--quick] [--json] [--chunk 500] [--rounds N]

--quick (about 1 minute): 3 rounds of 1,500 single jobs and 150,000 batch items per phase, 20,000 in-process
calls for the RSS check. The full run (about 5-7 minutes): 5 rounds of 3,000 and 250,000, 100,000 in-process
calls and 100,000 single jobs through the worker for the RSS check.

Queue phases (worker nodes of a prefork pool of 2 processes each, prefetch 1, late acks, JSON; idle between
their phases):
  a1  plain Celery task (Python, no wasm) returning the greeting, one task per message
  a2  plain Celery `greet.chunks(..., K)`: K greetings per message
  b   wasmq single jobs (`Client.submit`), one greeting per message, a fresh wasm instance per job
  c   wasmq batches (`Client.map`, chunk size K), one instance per chunk through the module's batch export
  b0  (informational, unless --no-b0) b with Celery task events off on both sides (worker: no
      task-received/started/succeeded events; producer: no task-sent event), on a third node and queue
      (bench/wasmq_noevents_worker.py): what the events that Flower needs cost per job
Throughput: all jobs sent, then all results collected (plain: `ResultSet.join` / `GroupResult.join`, i.e.
`AsyncResult.get` per message, over Celery's pub/sub result consumer; `join_native` is not used because in
Celery 5.7 with Redis it waits out its 0.5 s poll interval even when every result is in; wasmq: `Job.get` /
`Client.map`); the phases are interleaved for --rounds rounds and the median is reported. Latency: one
message at a time, send to result in the producer's hands (p50/p99). Peak RSS: the largest resident set of
either pool process of the node during that phase.

In-process (d): `Sandbox.call` next to the shortest raw wasmtime-py call (bench/sandbox_call.py); worker cold
start in a fresh process: sandbox set-up (engine, linker, every registered module) to the first served call,
with and without the precompiled cache; RSS of a process making `--leak-calls` sandbox calls (after the first
tenth, and at the end); in the full run also the pool processes' RSS over `--leak-jobs` single jobs.

Redis is embedded (started for the run) unless WASMQ_REDIS_URL is set; then queues of the run's own are used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "bench"))

import filebatch  # noqa: E402
from background import Background  # noqa: E402
from celery.result import ResultSet  # noqa: E402

from worker.config import Settings  # noqa: E402
from worker.devtools.embedded_redis import given_or_embedded  # noqa: E402
from worker.devtools.node import WorkerNode  # noqa: E402
from worker.producer.client import Client  # noqa: E402

MANIFEST = ROOT / "modules" / "manifest.json"
RESULT_TTL_S = 600
WAIT_S = 600.0


def greeting(name: str) -> str:
    return f"Hello World, {name}!"


@dataclass
class Phase:
    """One queue phase: throughput over rounds, latency one at a time, peak RSS of a pool process."""

    name: str
    what: str
    items_per_message: int
    items_per_s: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latency_ms)
        pick = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]) if lat else (lambda q: float("nan"))
        ips = statistics.median(self.items_per_s) if self.items_per_s else float("nan")
        return {
            "what": self.what,
            "items_per_message": self.items_per_message,
            "items_per_s": round(ips, 1),
            "messages_per_s": round(ips / self.items_per_message, 1),
            "rounds_items_per_s": [round(v, 1) for v in self.items_per_s],
            "p50_ms": round(pick(0.5), 2),
            "p99_ms": round(pick(0.99), 2),
            "latency_samples": len(lat),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }


class RssWatch(Background):
    """Samples the RSS of a node's pool processes every 50 ms while active; keeps the peak."""

    def __init__(self, node: WorkerNode) -> None:
        super().__init__()
        self.node = node
        self.peak = 0

    def _run(self) -> None:
        procs = self.node.pool_processes()
        while True:
            for proc in procs:
                try:
                    self.peak = max(self.peak, proc.memory_info().rss)
                except psutil.Error:
                    procs = self.node.pool_processes()
            if self._stop.wait(0.05):
                return


def pool_rss_mb(node: WorkerNode) -> list[float]:
    out = []
    for proc in node.pool_processes():
        try:
            out.append(round(proc.memory_info().rss / 2**20, 1))
        except psutil.Error:
            pass
    return sorted(out)


def redis_url() -> AbstractContextManager[tuple[str, bool]]:
    """(url, ours): the given WASMQ_REDIS_URL, or an embedded Redis started for this run."""
    return given_or_embedded(os.environ.get("WASMQ_REDIS_URL"))


def timed(run: Callable[[], None], items: int) -> float:
    started = time.perf_counter()
    run()
    return items / (time.perf_counter() - started)


def latency(one: Callable[[], None], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        one()
        out.append((time.perf_counter() - started) * 1000.0)
    return out


def check(got: list[Any], names: list[str]) -> None:
    want = [greeting(n) for n in names]
    if got != want:
        bad = next(i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w) if got else 0
        raise SystemExit(f"wrong answers: item {bad}: {got[bad] if got else None!r}, expected {want[bad]!r}")


@dataclass
class NodeSpec:
    name: str
    cmd: list[str]
    env: dict[str, str]


def node_specs(url: str, tmp: Path, tag: str) -> dict[str, NodeSpec]:
    """The three worker nodes: plain Celery, wasmq, and wasmq with task events off (b0), each on its queue."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("WASMQ_", "BENCH_"))}
    base_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), base_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    wasmq_env = {
        **base_env,
        "WASMQ_REDIS_URL": url,
        "WASMQ_QUEUE": f"wasmq-bench-{tag}",
        "WASMQ_MANIFEST": str(MANIFEST),
        "WASMQ_CACHE_DIR": str(tmp / "cache"),
        "WASMQ_RESULT_TTL_S": str(RESULT_TTL_S),
    }
    plain_env = {
        **base_env,
        "BENCH_REDIS_URL": url,
        "BENCH_PLAIN_QUEUE": f"plain-bench-{tag}",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), base_env["PYTHONPATH"]]),
    }
    names = {key: f"{key}-{tag}@localhost" for key in ("plain", "wasmq", "noevents")}
    plain_cmd = [
        sys.executable, "-m", "celery", "-A", "plain_app", "worker", "--pool=prefork", "--concurrency=2",
        "--prefetch-multiplier=1", f"--queues={plain_env['BENCH_PLAIN_QUEUE']}", f"--hostname={names['plain']}",
        "--loglevel=WARNING",
    ]  # fmt: skip
    wasmq_cmd = [
        sys.executable, "-m", "worker.cli", "worker", "--concurrency=2", f"--hostname={names['wasmq']}",
        "--loglevel=WARNING",
    ]  # fmt: skip
    noevents_cmd = [sys.executable, str(ROOT / "bench" / "wasmq_noevents_worker.py"), f"--hostname={names['noevents']}"]
    return {
        "plain": NodeSpec(names["plain"], plain_cmd, plain_env),
        "wasmq": NodeSpec(names["wasmq"], wasmq_cmd, wasmq_env),
        "noevents": NodeSpec(
            names["noevents"], noevents_cmd, {**wasmq_env, "WASMQ_QUEUE": f"wasmq-bench-{tag}-noevents"}
        ),
    }


Run = Callable[[list[str]], None]


def measure(runs: dict[str, tuple[Run, WorkerNode, int]], phases: dict[str, Phase], args: argparse.Namespace) -> None:
    """Throughput rounds (interleaved), then one-at-a-time latency, each with the node's peak RSS."""
    for r in range(args.rounds):
        for key, (run, node, n) in runs.items():
            names = [f"user-{r}-{i}" for i in range(n)]
            with RssWatch(node) as watch:
                phases[key].items_per_s.append(timed(lambda run=run, names=names: run(names), n))  # type: ignore[misc]
            phases[key].peak_rss_mb = max(phases[key].peak_rss_mb, watch.peak / 2**20)
            print(f"  round {r + 1}: {key:<2} {phases[key].items_per_s[-1]:>10.0f} items/s", file=sys.stderr)
    for key, (run, node, _) in runs.items():
        size = phases[key].items_per_message
        count = args.latency if size == 1 else max(5, args.latency // 10)
        names = [f"lat-{i}" for i in range(size)]
        with RssWatch(node) as watch:
            phases[key].latency_ms = latency(lambda run=run, names=names: run(names), count)  # type: ignore[misc]
        phases[key].peak_rss_mb = max(phases[key].peak_rss_mb, watch.peak / 2**20)


def queue_phases(args: argparse.Namespace, url: str, tmp: Path) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    specs = node_specs(url, tmp, tag)
    os.environ.update(BENCH_REDIS_URL=url, BENCH_PLAIN_QUEUE=specs["plain"].env["BENCH_PLAIN_QUEUE"])
    import plain_app  # reads BENCH_* at import

    settings = Settings(
        redis_url=url,
        queue=specs["wasmq"].env["WASMQ_QUEUE"],
        manifests=(MANIFEST,),
        cache_dir=tmp / "cache",
        result_ttl_s=RESULT_TTL_S,
    )
    k = args.chunk
    phases = {
        "a1": Phase("a1", "plain Celery task, one per message", 1),
        "b": Phase("b", "wasmq single jobs (submit), one per message", 1),
        "b0": Phase("b0", "b with Celery task events off (informational)", 1),
        "a2": Phase("a2", f"plain Celery chunks of {k}", k),
        "c": Phase("c", f"wasmq batches (map), chunk {k}", k),
    }
    phases = {key: phase for key, phase in phases.items() if key != "b0" or args.b0}
    out: dict[str, Any] = {}
    quiet_settings = settings.with_(queue=specs["noevents"].env["WASMQ_QUEUE"])
    with Client(settings) as client, Client(quiet_settings) as quiet:
        quiet.app.conf.task_send_sent_event = False
        greet = plain_app.greet
        nodes: dict[str, WorkerNode] = {}
        try:
            for key in ("plain", "wasmq", "noevents") if args.b0 else ("plain", "wasmq"):
                spec = specs[key]
                nodes[key] = WorkerNode(spec.env, log_dir=tmp, node=spec.name, command=spec.cmd, cwd=ROOT)
                nodes[key].launch()
            started = time.monotonic()
            nodes["plain"].wait_ready(plain_app.app, timeout=90)
            nodes["wasmq"].wait_ready(client.app, timeout=90)
            # First wasmq job served, counted from the node's start (Celery start-up included; informational).
            client.submit("greeting", "greet", "first").get(timeout=WAIT_S)
            out["wasmq_node_start_to_first_job_s"] = round(time.monotonic() - started, 2)

            def a1(names: list[str]) -> None:
                check(ResultSet([greet.delay(n) for n in names]).join(timeout=WAIT_S), names)

            def a2(names: list[str]) -> None:
                res = greet.chunks(zip(names), k).group().apply_async()
                check([v for part in res.join(timeout=WAIT_S) for v in part], names)

            def singles(producer: Client) -> Run:
                def run(names: list[str]) -> None:
                    jobs = [producer.submit("greeting", "greet", n) for n in names]
                    check([job.get(timeout=WAIT_S) for job in jobs], names)

                return run

            def c(names: list[str]) -> None:
                check([o.output for o in client.map("greeting", "greet", names, chunk_size=k, timeout=WAIT_S)], names)

            runs: dict[str, tuple[Run, WorkerNode, int]] = {
                "a1": (a1, nodes["plain"], args.singles),
                "b": (singles(client), nodes["wasmq"], args.singles),
                "a2": (a2, nodes["plain"], args.items),
                "c": (c, nodes["wasmq"], args.items),
            }
            if "noevents" in nodes:
                nodes["noevents"].wait_ready(quiet.app, timeout=90)
                runs["b0"] = (singles(quiet), nodes["noevents"], args.singles)
            runs = {key: runs[key] for key in phases}
            # Warm-up: every pool process has its connections open and the module loaded.
            for key, (run, _, _) in runs.items():
                run([f"warm-{i}" for i in range(20 if phases[key].items_per_message == 1 else 4 * k)])
            out["wasmq_pool_rss_mb_after_warmup"] = pool_rss_mb(nodes["wasmq"])
            measure(runs, phases, args)
            if args.leak_jobs:
                out["worker_leak"] = worker_leak(client, nodes["wasmq"], args.leak_jobs)
            out["wasmq_pool_rss_mb_at_end"] = pool_rss_mb(nodes["wasmq"])
            listeners = [getattr(c, "listener", None) for c in (client, quiet)]  # absent before pub/sub waits
            out["producer_listener_failures"] = [f for li in listeners if li is not None for f in li.failures]
        finally:
            for node in nodes.values():
                node.stop(60)
    out["phases"] = {key: phase.summary() for key, phase in phases.items()}
    return out


def worker_leak(client: Client, node: WorkerNode, jobs: int) -> dict[str, Any]:
    """RSS of the wasmq pool processes over `jobs` single jobs (sent in windows of 2,000)."""
    window = 2000
    done = 0
    marks: dict[str, list[float]] = {}
    started = time.perf_counter()
    while done < jobs:
        n = min(window, jobs - done)
        pending = [client.submit("greeting", "greet", f"leak-{done + i}") for i in range(n)]
        for job in pending:
            job.get(timeout=WAIT_S)
        done += n
        if done >= jobs // 10 and "after_10pct" not in marks:
            marks["after_10pct"] = pool_rss_mb(node)
    marks["at_end"] = pool_rss_mb(node)
    return {"jobs": jobs, "seconds": round(time.perf_counter() - started, 1), "pool_rss_mb": marks}


COLD_START = r"""
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from worker.catalog import ModuleCatalog
from worker.config import Settings
from worker.sandbox import Sandbox
t1 = time.perf_counter()
cache = Path(sys.argv[2]) if sys.argv[2] else None
sandbox = Sandbox(ModuleCatalog.from_manifests([Path(sys.argv[1])]), settings=Settings(cache_dir=cache))
t2 = time.perf_counter()
for spec in sandbox.catalog:  # what worker_process_init does: every registered module
    sandbox.load(spec)
t3 = time.perf_counter()
out = sandbox.call("greeting", "greet", "Alice").output
t4 = time.perf_counter()
assert out == "Hello World, Alice!", out
sandbox.close()
ms = lambda a, b: round((b - a) * 1000, 2)
print(json.dumps({"imports_ms": ms(t0, t1), "engine_ms": ms(t1, t2), "modules_ms": ms(t2, t3),
                  "first_call_ms": ms(t3, t4), "setup_to_first_call_ms": ms(t1, t4)}))
"""


def cold_start(tmp: Path, runs: int) -> dict[str, Any]:
    """Fresh processes: sandbox set-up to the first served call, with the precompiled cache and without."""
    cache = tmp / "cold-cache"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def once(cache_arg: str) -> dict[str, float]:
        done = subprocess.run(
            [sys.executable, "-c", COLD_START, str(MANIFEST), cache_arg],
            env=env, cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"cold-start probe failed: {done.stderr[-2000:]}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    once(str(cache))  # fills the cache
    result: dict[str, Any] = {}
    for label, arg in (("with_cache", str(cache)), ("without_cache", "")):
        samples = [once(arg) for _ in range(runs)]
        result[label] = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    return result


LEAK = r"""
import json, sys, psutil
from pathlib import Path
from worker.catalog import ModuleCatalog
from worker.config import Settings
from worker.sandbox import Sandbox
n = int(sys.argv[2])
proc = psutil.Process()
with Sandbox(ModuleCatalog.from_manifests([Path(sys.argv[1])]), settings=Settings(cache_dir=None)) as sandbox:
    marks = {}
    for i in range(n):
        sandbox.call("greeting", "greet", f"user-{i}")
        if i + 1 == n // 10:
            marks["after_10pct_mb"] = proc.memory_info().rss / 2**20
    marks["at_end_mb"] = proc.memory_info().rss / 2**20
    batches = n // 500
    for i in range(batches):
        sandbox.call_many("greeting", "greet", [f"u{j}" for j in range(500)])
    marks["after_batches_mb"] = proc.memory_info().rss / 2**20
print(json.dumps({"calls": n, "batches_of_500": batches, **{k: round(v, 1) for k, v in marks.items()}}))
"""


def in_process(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import sandbox_call  # bench/sandbox_call.py

    micro = sandbox_call.main_result(
        rounds=args.micro_rounds, sandbox_calls=args.micro_calls, raw_calls=args.micro_calls * 10,
        fresh_calls=args.micro_calls, batch_items=args.chunk,
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    leak = subprocess.run(
        [sys.executable, "-c", LEAK, str(MANIFEST), str(args.leak_calls)],
        env=env, cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if leak.returncode != 0:
        raise SystemExit(f"leak probe failed: {leak.stderr[-2000:]}")
    return {
        "micro": micro,
        "cold_start": cold_start(tmp, args.cold_runs),
        "leak": json.loads(leak.stdout.strip().splitlines()[-1]),
    }


def ratio(num: float, den: float) -> float:
    return round(num / den, 3) if den else float("nan")


def print_report(result: dict[str, Any]) -> None:
    if "queue" in result:
        print_queue(result)
    if "in_process" in result:
        print_in_process(result["in_process"])
    if "queue" in result:
        q = result["queue"]
        if "worker_leak" in q:
            wl = q["worker_leak"]
            print(f"   worker pool RSS over {wl['jobs']} single jobs ({wl['seconds']} s): {wl['pool_rss_mb']}")
        print(
            f"   wasmq pool RSS: after warm-up {q['wasmq_pool_rss_mb_after_warmup']}, at the end "
            f"{q['wasmq_pool_rss_mb_at_end']}; node start to first job {q['wasmq_node_start_to_first_job_s']} s"
        )
    if "file_batch" in result:
        filebatch.print_file_batch(result["file_batch"])


def print_queue(result: dict[str, Any]) -> None:
    ph = result["queue"]["phases"]
    print(f"\n{'phase':<4} {'what':<46} {'items/s':>9} {'msgs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'peak RSS MB':>11}")
    for key in ("a1", "b", "b0", "a2", "c"):
        if key not in ph:
            continue
        p = ph[key]
        print(
            f"{key:<4} {p['what']:<46} {p['items_per_s']:>9.0f} {p['messages_per_s']:>8.1f} "
            f"{p['p50_ms']:>8.2f} {p['p99_ms']:>8.2f} {p['peak_rss_mb']:>11.1f}"
        )
    r = result["ratios"]
    print(f"\nb/a1 = {r['b/a1']:.3f} (target >= 0.9)    c/a2 = {r['c/a2']:.3f} (target >= 1.0)", end="")
    print(f"    b0/a1 = {r['b0/a1']:.3f} (task events off)" if "b0/a1" in r else "")


def print_in_process(d: dict[str, Any]) -> None:
    m = d["micro"]
    print(
        f"\nd: Sandbox.call {m['sandbox_us']:.1f} us/call, raw wasmtime-py {m['raw_us']:.1f} us/call: "
        f"{m['ratio']:.2f}x (target <= 2); call_many per item ({m['batch_items']} per chunk) "
        f"{m['batch_item_us']:.2f} us; fresh Store+instance without checks {m['fresh_instance_us']:.1f} us"
    )
    for label, cs in d["cold_start"].items():
        print(
            f"   cold start {label.replace('_', ' ')}: set-up to first call {cs['setup_to_first_call_ms']:.1f} ms "
            f"(engine {cs['engine_ms']:.1f}, modules {cs['modules_ms']:.1f}, first call {cs['first_call_ms']:.1f}; "
            f"imports {cs['imports_ms']:.0f} ms before that)"
        )
    lk = d["leak"]
    print(
        f"   RSS over {lk['calls']} in-process sandbox calls: {lk['after_10pct_mb']} MB after 10%, "
        f"{lk['at_end_mb']} MB at the end; {lk['after_batches_mb']} MB after {lk['batches_of_500']} batches"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer jobs and rounds (about 2 minutes)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--chunk", type=int, default=500, help="K: items per message for a2 and c")
    parser.add_argument("--rounds", type=int, help="interleaved throughput rounds (median reported)")
    parser.add_argument("--singles", type=int, help="jobs per round for a1 and b")
    parser.add_argument("--items", type=int, help="items per round for a2 and c")
    parser.add_argument("--latency", type=int, help="one-at-a-time samples for a1 and b (a tenth for a2, c)")
    parser.add_argument("--leak-calls", type=int, help="in-process sandbox calls for the RSS check")
    parser.add_argument("--leak-jobs", type=int, help="single jobs through the worker for the RSS check (0: skip)")
    parser.add_argument("--skip-queue", action="store_true", help="only the in-process measurements (d)")
    parser.add_argument("--skip-in-process", action="store_true", help="only the queue phases (a1, a2, b, c)")
    parser.add_argument("--no-b0", dest="b0", action="store_false", help="skip the informational phase b0")
    parser.add_argument("--batch-lines", type=int, help="lines of the file batch (e); 0: skip it")
    parser.add_argument("--batch-big-lines", type=int, help="lines of the large file batch (producer RSS); 0: skip")
    parser.add_argument("--before", help="another checkout whose `wasmq batch` runs in phase e too (before/after)")
    parser.add_argument("--only-file-batch", action="store_true", help="only the file batch (e)")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "rounds": 3 if quick else 5,
        "singles": 1500 if quick else 3000,
        "items": 150_000 if quick else 250_000,
        "latency": 100 if quick else 300,
        "leak_calls": 20_000 if quick else 100_000,
        "leak_jobs": 0 if quick else 100_000,
        "batch_lines": 200_000 if quick else 1_000_000,
        "batch_big_lines": 1_000_000 if quick else 10_000_000,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.micro_rounds, args.micro_calls, args.cold_runs = (3, 1000, 3) if quick else (5, 2000, 5)
    started = time.perf_counter()
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "celery": version("celery"),
            "wasmtime": version("wasmtime"),
            "root": str(ROOT),
        },
        "settings": {k: v for k, v in vars(args).items() if k not in ("json",)},
    }
    if args.only_file_batch:
        args.skip_in_process = args.skip_queue = True
    with tempfile.TemporaryDirectory(prefix="wasmq-compare-") as tmp:
        if args.batch_lines:
            with redis_url() as (url, ours):
                print(f"file batch (e) on {'embedded ' if ours else ''}Redis {url.split('@')[-1]} ...", file=sys.stderr)
                result["file_batch"] = filebatch.run_file_batch(args, url, Path(tmp), ROOT)
        if not args.skip_in_process:
            print("in-process measurements (d) ...", file=sys.stderr)
            result["in_process"] = in_process(args, Path(tmp))
        if not args.skip_queue:
            with redis_url() as (url, ours):
                print(f"queue phases on {'embedded ' if ours else ''}Redis {url.split('@')[-1]} ...", file=sys.stderr)
                result["queue"] = queue_phases(args, url, Path(tmp))
    if not args.skip_queue:
        ph = result["queue"]["phases"]
        result["ratios"] = {
            "b/a1": ratio(ph["b"]["items_per_s"], ph["a1"]["items_per_s"]),
            "c/a2": ratio(ph["c"]["items_per_s"], ph["a2"]["items_per_s"]),
        }
        if "b0" in ph:
            result["ratios"]["b0/a1"] = ratio(ph["b0"]["items_per_s"], ph["a1"]["items_per_s"])
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)
        print(f"\ntotal {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
