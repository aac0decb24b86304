"""What the commands share: the argument parser class, printing (one JSON object with --json, readable text
otherwise), reading input, the limit options."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TypeAlias

from ..connections import redact
from ..errors import InvalidInput, UsageError, WasmqError
from ..outcome import Outcome

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # what `add_parser(sub)` gets


class Parser(argparse.ArgumentParser):
    """argparse that raises `UsageError` (exit code 2, printed our way) instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def add_limits(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fuel", type=int, help="fuel budget (at most the module's)")
    p.add_argument("--timeout-ms", type=int, help="wall-clock deadline in ms (at most the module's)")
    p.add_argument("--memory-mb", type=int, help="memory cap in MiB (at most the module's)")


def add_input(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--input", help="input text")
    group.add_argument("--input-file", help="read the input from a file ('-' for stdin)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")


def print_json(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def report_error(exc: WasmqError, *, as_json: bool) -> None:
    """An error as the user sees it; a URL in it never shows its password (whoever wrote the message)."""
    if as_json:
        sys.stdout.write(redact(json.dumps({"ok": False, "error": exc.to_dict()}, ensure_ascii=False)) + "\n")
        sys.stdout.flush()
    else:
        print(redact(f"error: {exc.type}: {exc.message}"), file=sys.stderr)


def report_usage_error(exc: UsageError, *, as_json: bool) -> None:
    if as_json:
        print_json({"ok": False, "error": exc.to_dict()})
    print(exc.message, file=sys.stderr)


def report_outcome(outcome: Outcome, *, as_json: bool) -> int:
    """Print a finished call the same way for `call` and `run`; returns the exit code."""
    if outcome.error is not None:
        report_error(outcome.error, as_json=as_json)
        return 1
    if as_json:
        print_json(outcome.to_dict())
    else:
        print(outcome.output)
    return 0


def read_input(text: str | None, path: str | None) -> str:
    """The input text from --input or --input-file (UTF-8; '-' is stdin)."""
    if path is None:
        return text if text is not None else ""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read input file {path}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"input file {path} is not valid UTF-8 (byte {exc.start})") from None


def limits_from(args: Any) -> dict[str, int]:
    limits = {"fuel": args.fuel, "timeout_ms": args.timeout_ms, "memory_mb": args.memory_mb}
    return {k: v for k, v in limits.items() if v is not None}
