"""`wasmq batch`: a function over every line of a file, JSON lines out, streamed and resumable.

Lines are read as they are sent, rows are written as soon as their turn comes (rows.py), so memory stays
bounded by the window of chunks in flight whatever the file's length, and an interrupted batch leaves a valid
prefix that `--resume` continues.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from ..errors import UsageError
from .common import SubParsers, add_limits, limits_from
from .progress import BatchProgress, summarize, summary_text
from .rows import count_lines, input_lines, resume, slot_rows

FLUSH_EVERY_S = 0.5  # rows reach the file at least this often (a SIGKILL loses at most that much)
INTERRUPTED = 130


def add_parser(sub: SubParsers) -> None:
    batch = sub.add_parser("batch", help="run a function over every line of a file")
    batch.add_argument("file", help="one input per line ('-' for stdin)")
    batch.add_argument("--module", required=True)
    batch.add_argument("--function", required=True)
    batch.add_argument("--out", help="write JSON lines here (default: stdout)")
    batch.add_argument("--resume", action="store_true", help="keep the rows already in --out, run only the rest")
    batch.add_argument("--chunk", type=int, help="inputs per message (default: sized to WASMQ_CHUNK_TARGET_S)")
    batch.add_argument("--window", type=int, help="chunks in flight at most (default WASMQ_BATCH_WINDOW)")
    batch.add_argument("--item-usage", action="store_true", help="each row carries its own usage")
    batch.add_argument("--wait-s", type=float, help="give up after this many seconds")
    add_limits(batch)


def run(args: argparse.Namespace) -> int:
    from ..producer.client import Client

    for flag, value in (("--chunk", args.chunk), ("--window", args.window)):
        if value is not None and value <= 0:
            raise UsageError(f"{flag} must be positive, not {value}")
    if args.resume and not args.out:
        raise UsageError("--resume needs --out: the rows already written are read from there")
    total = count_lines(args.file)
    with ExitStack() as stack:
        stop = _Stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            stack.callback(signal.signal, sig, signal.signal(sig, stop))
        lines = stack.enter_context(input_lines(args.file))
        start = resume(Path(args.out), lines, source=args.file) if args.resume else 0
        out: IO[str] = sys.stdout
        if args.out:
            out = stack.enter_context(open(args.out, "a" if args.resume else "w", encoding="utf-8"))
        client = stack.enter_context(Client())
        progress = BatchProgress(f"{args.module}.{args.function}", total, start=start)
        stack.callback(progress.close)
        flushed, done = time.monotonic(), start
        failed: Counter[str] = Counter()
        try:
            stream = client.stream(
                args.module, args.function, lines, chunk_size=args.chunk, window=args.window, timeout=args.wait_s,
                usage="items" if args.item_usage else "chunk", limits=limits_from(args),
            )  # fmt: skip
            failed = stream.tally.failed  # counted by the stream as each chunk is handed over
            for slot in stream.slots():
                stop.safe = False  # a chunk's rows are written whole, or not at all
                out.write(slot_rows(done, slot))
                done += len(slot)
                progress.update(done, sum(failed.values()))  # drawn at most every 0.1 s
                if time.monotonic() - flushed >= FLUSH_EVERY_S:
                    out.flush()
                    flushed = time.monotonic()
                stop.safe = True
                if stop.asked:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            progress.update(done, sum(failed.values()))
            out.flush()
            print(f"interrupted after {done} rows; continue with --resume", file=sys.stderr)
            return INTERRUPTED
    summary = summarize(done - start, failed, progress.watch.seconds)  # progress.close drew the last line
    print(summary_text(summary), file=sys.stderr if not args.out else sys.stdout)
    return 0 if summary["failed"] == 0 else 1


class _Stop:
    """SIGINT and SIGTERM end a batch: rows so far flushed, `--resume` continues. The handler leaves a mark
    that the loop checks after each chunk's rows, and raises KeyboardInterrupt at once only while the batch
    waits for outcomes (never in the middle of writing rows; and a raise inside a finalizer would be
    swallowed)."""

    asked = False
    safe = True

    def __call__(self, signum: int, frame: Any) -> None:
        self.asked = True
        if self.safe:
            raise KeyboardInterrupt
