"""`wasmq status [--json] [--watch [SECONDS]]`: what the queue is doing, across every worker and host."""

from __future__ import annotations

import argparse
import sys
import time

from ..app import make_app
from ..config import get_settings
from ..monitoring.status import gather, render
from .common import UsageError, print_json

CLEAR = "\x1b[H\x1b[2J"


def run(args: argparse.Namespace) -> int:
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
