"""The `wasmq` command: parse arguments, delegate to `worker.commands`, turn the outcome into an exit code.

Exit codes: 0 success, 1 the job or module failed (its typed error is printed), 2 usage error.
No Python traceback reaches the user, whatever a module does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .commands import common
from .commands.common import UsageError
from .errors import WasmqError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _add_limits(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fuel", type=int, help="fuel budget (at most the module's)")
    p.add_argument("--timeout-ms", type=int, help="wall-clock deadline in ms (at most the module's)")
    p.add_argument("--memory-mb", type=int, help="memory cap in MiB (at most the module's)")


def _add_input(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--input", help="input text")
    group.add_argument("--input-file", help="read the input from a file ('-' for stdin)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")


def _add_admin_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`wasmq dead ...` and `wasmq modules ...`."""
    dead = sub.add_parser("dead", help="the dead-letter queue: jobs that failed for good, malformed messages")
    dead_sub = dead.add_subparsers(dest="dead_command", required=True, parser_class=_Parser)
    dead_list = dead_sub.add_parser("list", help="list dead letters, oldest first")
    dead_list.add_argument("--json", action="store_true")
    dead_list.add_argument("--limit", type=int, help="at most this many")
    dead_sub.add_parser("show", help="one dead letter in full").add_argument("id")
    dead_requeue = dead_sub.add_parser("requeue", help="send dead jobs again")
    dead_requeue.add_argument("id", nargs="?")
    dead_requeue.add_argument("--all", action="store_true")
    dead_sub.add_parser("purge", help="delete every dead letter")

    modules = sub.add_parser("modules", help="publish, list and verify modules")
    modules_sub = modules.add_subparsers(dest="modules_command", required=True, parser_class=_Parser)
    add = modules_sub.add_parser("add", help="check a module file and add it to the manifest")
    add.add_argument("file")
    add.add_argument("--name", required=True)
    add.add_argument("--version", required=True)
    add.add_argument("--abi", required=True, choices=["packed", "seed-rust", "seed-c", "scalar", "component"])
    add.add_argument("--function", action="append", required=True, help="a function to expose (repeatable)")
    add.add_argument("--batch", action="append", help="FUNCTION=EXPORT: the batch export of a packed function")
    add.add_argument("--manifest", help="manifest to add to (default: the first of WASMQ_MANIFEST)")
    add.add_argument("--description")
    add.add_argument("--wit", help="component ABI: the WIT file")
    add.add_argument("--world", help="component ABI: the world the component implements")
    for flag in ("--fuel", "--timeout-ms", "--memory-mb", "--max-input-bytes", "--max-output-bytes", "--max-retries"):
        add.add_argument(flag, type=int)
    modules_sub.add_parser("list", help="registered modules").add_argument("--json", action="store_true")
    modules_sub.add_parser("verify", help="check every registered module as a worker would")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wasmq", description="Run untrusted WebAssembly module calls, locally or on a queue.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    call = sub.add_parser("call", help="run one call in this process (no queue)")
    call.add_argument("module", nargs="?", help="registered module (name or name@version)")
    call.add_argument("function", nargs="?", help="function to call")
    call.add_argument("--wasm", help="a module file instead of a registered module")
    call.add_argument("--abi", choices=["packed", "seed-rust", "seed-c", "scalar"], default="packed")
    call.add_argument("--function", dest="function_opt", help="function to call (with --wasm)")
    _add_input(call)
    _add_limits(call)

    run = sub.add_parser("run", help="enqueue one call, wait, print")
    run.add_argument("module")
    run.add_argument("function")
    run.add_argument("--wait-s", type=float, default=60.0, help="how long to wait for the result")
    _add_input(run)
    _add_limits(run)

    batch = sub.add_parser("batch", help="run a function over every line of a file")
    batch.add_argument("file", help="one input per line ('-' for stdin)")
    batch.add_argument("--module", required=True)
    batch.add_argument("--function", required=True)
    batch.add_argument("--out", help="write JSON lines here (default: stdout)")
    batch.add_argument("--chunk", type=int, help="inputs per message")
    batch.add_argument("--wait-s", type=float, help="give up after this many seconds")
    _add_limits(batch)

    worker = sub.add_parser("worker", help="start a worker (Celery prefork pool)")
    worker.add_argument("--concurrency", type=int, help="worker processes (default WASMQ_CONCURRENCY)")
    worker.add_argument("--queues", help="comma-separated queues (default WASMQ_QUEUE)")
    worker.add_argument("--hostname", help="node name, e.g. w1@%%h")
    worker.add_argument("--loglevel", default="INFO")
    worker.add_argument(
        "--metrics-port", type=int, help="serve Prometheus metrics at /metrics on this port (WASMQ_METRICS_PORT)"
    )

    status = sub.add_parser("status", help="queue depths, workers, job counts and durations, deadlines")
    status.add_argument("--json", action="store_true", help="print one JSON object (one per refresh with --watch)")
    status.add_argument(
        "--watch", type=float, nargs="?", const=2.0, metavar="SECONDS", help="refresh every SECONDS (default 2)"
    )
    status.add_argument("--count", type=int, help="with --watch: stop after this many refreshes")
    status.add_argument("--queue", help="the queue to report on (default WASMQ_QUEUE)")
    status.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for workers to answer")

    _add_admin_parsers(sub)

    demo = sub.add_parser("demo", help="the main job end to end: Redis, workers, a batch of greetings")
    demo.add_argument("--count", type=int, default=2000, help="how many greetings")
    demo.add_argument("--concurrency", type=int, default=2)
    from .commands.bench import add_parser as add_bench_parser

    add_bench_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    want_json = "--json" in argv
    try:
        args = build_parser().parse_args(argv)
        from .commands import dispatch

        return dispatch(args)
    except UsageError as exc:
        common.report_usage_error(str(exc), as_json=want_json)
        return EXIT_USAGE
    except WasmqError as exc:
        common.report_error(exc, as_json=want_json)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # argparse --help
        return int(exc.code or 0)
    except Exception as exc:
        common.report_error(WasmqError(f"internal error: {type(exc).__name__}: {exc}"), as_json=want_json)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
