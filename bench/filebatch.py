"""The end-to-end file batch of `wasmq bench` (phase e): a file of N names to a JSONL file of greetings.

- e-plain: plain Celery `greet.chunks(zip(names), K).group()` of a native Python greeting (bench/plain_app.py,
  producer bench/plain_batch.py: read the file, send, wait, write the rows), 2 worker processes.
- e-wasmq: `wasmq batch names.txt --out out.jsonl` (streamed), 2 worker processes, the same Redis.
- e-wasmq-big: the same on a much larger file, for the producer's peak RSS (it must not grow with the batch).
- with `--before ROOT`: e-before, `wasmq batch` of another checkout (say, the commit before streaming) with a
  worker of that checkout, for figures before and after in the same run.

Each producer runs as its own process, timed from start to exit (reading and writing the files included);
its peak RSS is the kernel's (wait4's ru_maxrss). Redis memory left is `used_memory` after the run minus
before it. During the wasmq runs a single job is submitted every half second: its latency is the
"single job mid-batch" figure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from background import Background
from celery import Celery

from worker.config import Settings
from worker.devtools.node import WorkerNode
from worker.producer.client import Client

MANIFEST = Path(__file__).resolve().parent.parent / "modules" / "manifest.json"


def write_names(path: Path, lines: int) -> Path:
    if not path.exists():
        with open(path, "w", encoding="utf-8") as f:
            for start in range(0, lines, 100_000):
                f.write("".join(f"person {i}\n" for i in range(start, min(lines, start + 100_000))))
    return path


def producer(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run a producer to its end: wall seconds, peak RSS (MB), exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = threading.Thread(target=proc.stderr.read)  # drained, so that progress lines never block it
    err.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err.join()
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": usage.ru_maxrss / 1024, "exit": proc.returncode}


def count_rows(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


class SingleJobs(Background):
    """Submits one job every `every_s` while a batch runs; the latencies seen."""

    def __init__(self, settings: Settings, every_s: float = 0.5) -> None:
        super().__init__()
        self.settings, self.every_s = settings, every_s
        self.latencies: list[float] = []

    def _run(self) -> None:
        with Client(self.settings) as client:
            self._stop.wait(1.0)  # let the batch get going
            while not self._stop.is_set():
                started = time.perf_counter()
                client.submit("greeting", "greet", "mid-batch").get(timeout=60)
                self.latencies.append(time.perf_counter() - started)
                self._stop.wait(self.every_s)


def redis_used(url: str) -> int:
    with redis.Redis.from_url(url) as r:
        return int(r.info("memory")["used_memory"])


def run_file_batch(args: Any, url: str, tmp: Path, root: Path) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WASMQ_", "BENCH_"))}
    base["PYTHONPATH"] = os.pathsep.join([str(root), base.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    wasmq_env = {**base, "WASMQ_REDIS_URL": url, "WASMQ_QUEUE": f"wasmq-file-{tag}", "WASMQ_MANIFEST": str(MANIFEST),
                 "WASMQ_CACHE_DIR": str(tmp / "cache")}  # fmt: skip
    plain_env = {**base, "BENCH_REDIS_URL": url, "BENCH_PLAIN_QUEUE": f"plain-file-{tag}",
                 "PYTHONPATH": os.pathsep.join([str(root / "bench"), base["PYTHONPATH"]])}  # fmt: skip
    settings = Settings(redis_url=url, queue=wasmq_env["WASMQ_QUEUE"], manifests=(MANIFEST,), cache_dir=tmp / "cache")
    names = write_names(tmp / f"names-{args.batch_lines}.txt", args.batch_lines)
    out: dict[str, Any] = {"lines": args.batch_lines, "chunk_plain": args.chunk}
    plain_cmd = [sys.executable, "-m", "celery", "-A", "plain_app", "worker", "--pool=prefork", "--concurrency=2",
                 "--prefetch-multiplier=1", f"--queues={plain_env['BENCH_PLAIN_QUEUE']}",
                 f"--hostname=plain-file-{tag}@localhost", "--loglevel=WARNING"]  # fmt: skip
    nodes = {
        "plain": WorkerNode(plain_env, log_dir=tmp, node=f"plain-file-{tag}@localhost", command=plain_cmd, cwd=root),
        "wasmq": WorkerNode(wasmq_env, log_dir=tmp, node=f"wasmq-file-{tag}@localhost", loglevel="WARNING", cwd=root),
    }
    batch = [sys.executable, "-m", "worker.cli", "batch", "--module", "greeting", "--function", "greet"]
    runs: dict[str, dict[str, Any]] = {}
    with Client(settings) as client:
        try:
            for node in nodes.values():
                node.launch()
            nodes["wasmq"].wait_ready(client.app, timeout=90)
            # Not bench/plain_app.py: it reads its queue at import, and the other phases import it for theirs.
            with Celery("plain-file-control", broker=url, set_as_current=False) as control:
                nodes["plain"].wait_ready(control, timeout=90)
            client.map("greeting", "greet", [f"warm {i}" for i in range(2000)])  # pools warm, module loaded
            for key in ("e-plain", "e-wasmq"):
                dest = tmp / f"{key}.jsonl"
                before = redis_used(url)
                if key == "e-plain":
                    cmd = [sys.executable, str(root / "bench" / "plain_batch.py"), str(names), str(dest),
                           f"--chunk={args.chunk}"]  # fmt: skip
                    runs[key] = producer(cmd, plain_env, root)
                else:
                    with SingleJobs(settings) as singles:
                        runs[key] = producer([*batch, str(names), "--out", str(dest)], wasmq_env, root)
                    runs[key]["single_job_s"] = _spread(singles.latencies)
                runs[key]["redis_left_mb"] = max(0, redis_used(url) - before) / 2**20
                runs[key]["rows"] = count_rows(dest)
                runs[key]["items_per_s"] = args.batch_lines / runs[key]["seconds"]
                dest.unlink()
                _report(key, runs[key])
            if args.batch_big_lines:
                big = write_names(tmp / f"names-{args.batch_big_lines}.txt", args.batch_big_lines)
                dest = tmp / "e-wasmq-big.jsonl"
                run = runs["e-wasmq-big"] = producer([*batch, str(big), "--out", str(dest)], wasmq_env, root)
                run.update(rows=count_rows(dest), lines=args.batch_big_lines,
                           items_per_s=args.batch_big_lines / run["seconds"])  # fmt: skip
                dest.unlink()
                big.unlink()
                _report("e-wasmq-big", runs["e-wasmq-big"])
        finally:
            for node in nodes.values():
                node.stop(60)
    if args.before:
        runs["e-before"] = _before(Path(args.before), names, url, tmp, tag)
        _report("e-before", runs["e-before"])
    out["runs"] = runs
    out["ratio_wasmq_to_plain"] = runs["e-wasmq"]["items_per_s"] / runs["e-plain"]["items_per_s"]
    return out


def _before(before_root: Path, names: Path, url: str, tmp: Path, tag: str) -> dict[str, Any]:
    """`wasmq batch` of another checkout, on a worker of that checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WASMQ_", "BENCH_"))}
    env.update(PYTHONPATH=str(before_root), WASMQ_REDIS_URL=url, WASMQ_QUEUE=f"wasmq-before-{tag}",
               WASMQ_MANIFEST=str(before_root / "modules" / "manifest.json"),
               WASMQ_CACHE_DIR=str(tmp / "cache-before"))  # fmt: skip
    settings = Settings(redis_url=url, queue=env["WASMQ_QUEUE"], manifests=(MANIFEST,), cache_dir=None)
    node = WorkerNode(env, log_dir=tmp, node=f"before-{tag}@localhost", loglevel="WARNING", cwd=before_root)
    dest = tmp / "e-before.jsonl"
    with Client(settings) as client:
        node.launch()
        try:
            node.wait_ready(client.app, timeout=90)
            before = redis_used(url)
            cmd = [sys.executable, "-m", "worker.cli", "batch", str(names), "--module", "greeting", "--function",
                   "greet", "--out", str(dest)]  # fmt: skip
            with SingleJobs(settings) as singles:
                run = producer(cmd, env, before_root)
            run.update(single_job_s=_spread(singles.latencies), redis_left_mb=max(0, redis_used(url) - before) / 2**20,
                       rows=count_rows(dest))  # fmt: skip
            run["items_per_s"] = run["rows"] / run["seconds"]
        finally:
            node.stop(60)
    dest.unlink(missing_ok=True)
    return run


def _spread(values: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    return {"n": len(ordered), "median": ordered[len(ordered) // 2] if ordered else None,
            "max": ordered[-1] if ordered else None}  # fmt: skip


def _report(key: str, run: dict[str, Any]) -> None:
    print(
        f"  {key}: {run.get('items_per_s', 0):,.0f} items/s, producer peak {run['peak_rss_mb']:.0f} MB", file=sys.stderr
    )


def print_file_batch(d: dict[str, Any]) -> None:
    print(f"\ne) file batch: {d['lines']:,} lines -> JSONL, 2 worker processes each, same Redis")
    print(
        f"   {'run':<12} {'items/s':>10} {'wall s':>8} {'producer MB':>12} {'Redis left MB':>14} {'single job s':>13}"
    )
    for key, run in d["runs"].items():
        single = run.get("single_job_s") or {}
        shown = f"{single['max']:.3f} max" if single.get("max") is not None else "-"
        left = f"{run['redis_left_mb']:.1f}" if "redis_left_mb" in run else "-"
        lines = f" ({run['lines']:,} lines)" if "lines" in run else ""
        print(f"   {key:<12} {run['items_per_s']:>10,.0f} {run['seconds']:>8.1f} {run['peak_rss_mb']:>12.0f} "
              f"{left:>14} {shown:>13}{lines}")  # fmt: skip
    print(f"   e-wasmq / e-plain items/s: {d['ratio_wasmq_to_plain']:.2f}x (target >= 3x)")
