"""One module per `wasmq` sub-command; `dispatch` picks it."""

from __future__ import annotations

import argparse


def dispatch(args: argparse.Namespace) -> int:
    from . import bench, call, dead, demo, modules, queue, serve, status  # import only what the command needs

    handlers = {
        "call": call.run,
        "run": queue.run_one,
        "batch": queue.run_batch,
        "worker": serve.run,
        "demo": demo.run,
        "dead": dead.run,
        "modules": modules.run,
        "status": status.run,
        "bench": bench.run,
    }
    return handlers[args.command](args)
