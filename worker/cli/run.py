"""`wasmq run`: enqueue one call, wait for it, print its output or typed error."""

from __future__ import annotations

import argparse

from .common import SubParsers, add_input, add_limits, limits_from, read_input, report_outcome


def add_parser(sub: SubParsers) -> None:
    run = sub.add_parser("run", help="enqueue one call, wait, print")
    run.add_argument("module")
    run.add_argument("function")
    run.add_argument("--wait-s", type=float, default=60.0, help="how long to wait for the result")
    add_input(run)
    add_limits(run)


def run(args: argparse.Namespace) -> int:
    from ..producer.client import Client

    text = read_input(args.input, args.input_file)
    with Client() as client:
        job = client.submit(args.module, args.function, text, **limits_from(args))
        return report_outcome(job.outcome(timeout=args.wait_s), as_json=args.json)
