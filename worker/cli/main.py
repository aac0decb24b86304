"""The `wasmq` command: each sub-command's module adds its own parser and runs it; this turns the outcome
into an exit code.

Exit codes: 0 success, 1 the job or module failed (its typed error is printed), 2 usage error.
No Python traceback reaches the user, whatever a module does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..connections import CONNECTION_ERRORS, redact
from ..errors import BrokerUnavailable, InternalError, UsageError, WasmqError
from . import batch, bench, call, common, dead, demo, modules, run, status, worker

# sub-command -> its module (each has `add_parser(sub)` and `run(args) -> exit code`), in `--help` order
COMMANDS = {
    "call": call, "run": run, "batch": batch, "worker": worker, "status": status, "dead": dead,
    "modules": modules, "demo": demo, "bench": bench,
}  # fmt: skip
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = common.Parser(prog="wasmq", description="Run untrusted WebAssembly module calls, locally or on a queue.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=common.Parser)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    want_json = "--json" in argv
    try:
        args = build_parser().parse_args(argv)
        return int(COMMANDS[args.command].run(args))
    except UsageError as exc:
        common.report_usage_error(exc, as_json=want_json)
        return EXIT_USAGE
    except WasmqError as exc:
        common.report_error(exc, as_json=want_json)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # argparse --help
        return int(exc.code or 0)
    except CONNECTION_ERRORS as exc:  # from redis-py or kombu, in a command that did not say which server
        unreachable = BrokerUnavailable(redact(f"Redis is unreachable or refused us: {type(exc).__name__}: {exc}"))
        common.report_error(unreachable, as_json=want_json)
        return EXIT_FAILED
    except Exception as exc:
        error = InternalError(redact(f"internal error: {type(exc).__name__}: {exc}"))
        common.report_error(error, as_json=want_json)
        return EXIT_FAILED
