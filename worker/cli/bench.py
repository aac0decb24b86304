"""`wasmq bench`: wasmq next to plain Celery in one run (bench/compare.py, from a source checkout).

Throughput, p50/p99 latency and peak worker RSS of a plain Celery task, plain Celery chunks, wasmq single jobs
and wasmq batches on the same Redis with the same worker settings; a file of names to JSONL end to end, plain
Celery chunks next to `wasmq batch` (items/s, producer peak RSS at two file sizes, Redis memory left, a single
job's latency mid-batch); the sandbox call next to a raw
wasmtime-py call; worker cold start with and without the precompiled cache; RSS over many calls.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from ..config import REPO_ROOT
from ..errors import UsageError
from .common import SubParsers

SCRIPT = REPO_ROOT / "bench" / "compare.py"


def add_parser(sub: SubParsers) -> None:
    bench = sub.add_parser("bench", help="wasmq next to plain Celery: throughput, latency, RSS, cold start")
    bench.add_argument("--quick", action="store_true", help="fewer jobs and rounds (about 2 minutes)")
    bench.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    bench.add_argument("--chunk", type=int, default=500, help="items per message for batches (default 500)")
    bench.add_argument("--rounds", type=int, help="interleaved throughput rounds (the median is reported)")
    bench.add_argument("--skip-queue", action="store_true", help="only the in-process measurements")
    bench.add_argument("--batch-lines", type=int, help="lines of the end-to-end file batch (0: skip it)")
    bench.add_argument("--batch-big-lines", type=int, help="lines of the large file batch, for producer RSS (0: skip)")
    bench.add_argument("--before", help="another checkout whose `wasmq batch` is measured in the same run")
    bench.add_argument("--only-file-batch", action="store_true", help="only the end-to-end file batch")


def run(args: argparse.Namespace, script: Path = SCRIPT) -> int:
    if not script.is_file():
        raise UsageError(f"wasmq bench runs from a source checkout: {script} not found")
    if args.chunk <= 0:
        raise UsageError(f"--chunk must be positive, not {args.chunk}")
    argv = [f"--chunk={args.chunk}"]
    argv += ["--quick"] if args.quick else []
    argv += ["--json"] if args.json else []
    argv += [f"--rounds={args.rounds}"] if args.rounds else []
    argv += ["--skip-queue"] if args.skip_queue else []
    argv += [f"--batch-lines={args.batch_lines}"] if args.batch_lines is not None else []
    argv += [f"--batch-big-lines={args.batch_big_lines}"] if args.batch_big_lines is not None else []
    argv += [f"--before={args.before}"] if args.before else []
    argv += ["--only-file-batch"] if args.only_file_batch else []
    spec = importlib.util.spec_from_file_location("wasmq_bench_compare", script)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return int(module.main(argv))
