"""Printing shared by the commands: one JSON object with --json, readable text otherwise."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, WasmqError
from ..outcome import Outcome


class UsageError(Exception):
    """The command line is wrong: bad options, a missing file (exit code 2)."""


def print_json(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def report_error(exc: WasmqError, *, as_json: bool) -> None:
    if as_json:
        print_json({"ok": False, "error": exc.to_dict()})
    else:
        print(f"error: {exc.type}: {exc.message}", file=sys.stderr)


def report_usage_error(message: str, *, as_json: bool) -> None:
    if as_json:
        print_json({"ok": False, "error": {"type": "UsageError", "message": message, "retryable": False}})
    print(message, file=sys.stderr)


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
