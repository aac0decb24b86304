"""`wasmq batch`: a function over every line of a file, JSON lines out."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from ..errors import InvalidInput, UsageError
from ..outcome import Outcome
from .common import SubParsers, add_limits, limits_from
from .progress import Stopwatch, progress_bar, summarize, summary_text


def add_parser(sub: SubParsers) -> None:
    batch = sub.add_parser("batch", help="run a function over every line of a file")
    batch.add_argument("file", help="one input per line ('-' for stdin)")
    batch.add_argument("--module", required=True)
    batch.add_argument("--function", required=True)
    batch.add_argument("--out", help="write JSON lines here (default: stdout)")
    batch.add_argument("--chunk", type=int, help="inputs per message")
    batch.add_argument("--wait-s", type=float, help="give up after this many seconds")
    add_limits(batch)


def read_lines(path: str) -> list[str | InvalidInput]:
    """One input per line; a line that is not UTF-8 becomes its own `InvalidInput`, the rest still run."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    items: list[str | InvalidInput] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            items.append(line.removesuffix(b"\r").decode("utf-8"))
        except UnicodeDecodeError as exc:
            items.append(InvalidInput(f"line {number} is not valid UTF-8 (byte {exc.start})"))
    if items and items[-1] == "" and raw.endswith(b"\n"):
        items.pop()  # the file's final newline ends the last line, it does not start an empty one
    return items


def run(args: argparse.Namespace) -> int:
    from ..producer.client import Client

    items = read_lines(args.file)
    if args.chunk is not None and args.chunk <= 0:
        raise UsageError(f"--chunk must be positive, not {args.chunk}")
    texts = [item for item in items if isinstance(item, str)]
    watch = Stopwatch()
    with Client() as client, progress_bar(f"{args.module}.{args.function}") as progress:
        results = iter(
            client.map(
                args.module, args.function, texts, chunk_size=args.chunk, progress=progress,
                timeout=args.wait_s, **limits_from(args),
            )
        )  # fmt: skip
    outcomes = [next(results) if isinstance(item, str) else Outcome.failed(item) for item in items]
    summary = summarize(outcomes, watch.seconds)
    with ExitStack() as stack:
        out: IO[str] = sys.stdout
        if args.out:
            out = stack.enter_context(open(args.out, "w", encoding="utf-8"))
        write_jsonl(out, items, outcomes)
    print(summary_text(summary), file=sys.stderr if not args.out else sys.stdout)
    return 0 if summary["failed"] == 0 else 1


def write_jsonl(out: IO[str], items: list[str | InvalidInput], outcomes: list[Outcome]) -> None:
    for index, (item, outcome) in enumerate(zip(items, outcomes, strict=True)):
        line = {"index": index, "input": item if isinstance(item, str) else None, **outcome.to_dict()}
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
