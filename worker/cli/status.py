"""`wasmq status [--json] [--watch [SECONDS]]`: what the queue is doing, across every worker and host."""

from __future__ import annotations

import argparse
import sys
import time

from ..config import get_settings
from ..errors import UsageError
from .common import SubParsers, print_json

CLEAR = "\x1b[H\x1b[2J"


def add_parser(sub: SubParsers) -> None:
    status = sub.add_parser("status", help="queue depths, workers, job counts and durations, deadlines")
    status.add_argument("--json", action="store_true", help="print one JSON object (one per refresh with --watch)")
    status.add_argument(
        "--watch", type=float, nargs="?", const=2.0, metavar="SECONDS", help="refresh every SECONDS (default 2)"
    )
    status.add_argument("--count", type=int, help="with --watch: stop after this many refreshes")
    status.add_argument("--queue", help="the queue to report on (default WASMQ_QUEUE)")
    status.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for workers to answer")


def run(args: argparse.Namespace) -> int:
    from ..monitoring.status import gather, render
    from ..queue.app import make_app

    if args.watch is not None and args.watch <= 0:
        raise UsageError(f"--watch must be a positive number of seconds, not {args.watch:g}")
    if args.count is not None and args.count <= 0:
        raise UsageError(f"--count must be positive, not {args.count}")
    if args.timeout <= 0:
        raise UsageError(f"--timeout must be positive, not {args.timeout:g}")
    settings = get_settings()
    if args.queue:
        settings = settings.with_(queue=args.queue)
    app = make_app(settings, producer=True)
    shown = 0
    try:
        while True:
            status = gather(settings, app, timeout=args.timeout)
            if args.json:
                print_json(status)
            else:
                clear = CLEAR if args.watch is not None and sys.stdout.isatty() else ""
                print(clear + render(status), flush=True)
                if args.watch is not None and not clear:
                    print(flush=True)
            shown += 1
            if args.watch is None or (args.count is not None and shown >= args.count):
                return 0
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0
    finally:
        app.close()
