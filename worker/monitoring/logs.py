"""structlog, configured once per process: JSON lines in production, readable console output on a terminal.

Celery's own log records (stdlib `logging`) go through the same renderer, so a worker's output is one
format. `WASMQ_LOG_FORMAT=auto` (the default) picks console output when stderr is a terminal, JSON otherwise.
The worker configures logging from Celery's `setup_logging` signal (so Celery leaves logging to us); pool
processes forked afterwards inherit the configuration.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from ..config import get_settings

_HANDLER_NAME = "wasmq"
_configured = False


FIRST = ("timestamp", "level", "event", "logger")


class _NamedWriteLogger(structlog.WriteLogger):
    """structlog's fast file logger, with the name `structlog.get_logger(name)` was called with."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedWriteLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self.file = file

    def __call__(self, *args: Any) -> _NamedWriteLogger:
        return _NamedWriteLogger(self.file, str(args[0]) if args else "")


def _first_keys(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Put timestamp, level, event and logger first, so that a JSON line reads well."""
    head = {k: event.pop(k) for k in FIRST if k in event}
    head.update(event)
    return head


def _renderer(fmt: str, stream: TextIO) -> list[Any]:
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    if fmt == "console":
        return [structlog.dev.ConsoleRenderer(colors=stream.isatty())]
    return [structlog.processors.format_exc_info, _first_keys, structlog.processors.JSONRenderer(ensure_ascii=False)]


def _level(level: int | str) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    return number if isinstance(number, int) else logging.INFO


def configure_logging(
    fmt: str = "auto", level: int | str = logging.INFO, *, stream: TextIO | None = None, cache: bool = True
) -> None:
    """Send structlog events and stdlib log records to `stream` (stderr) as JSON lines or console output.

    structlog loggers write straight to the stream (the per-job line costs no stdlib `LogRecord`); stdlib
    records (Celery's own) go through `ProcessorFormatter` with the same renderer, so both look alike.
    Idempotent: a second call replaces the handler the first one installed. Tests pass `cache=False`, so
    that `structlog.testing.capture_logs` still works afterwards.
    """
    global _configured
    out = stream if stream is not None else sys.stderr
    number = _level(level)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    render = _renderer(fmt, out)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.stdlib.add_logger_name,
            timestamper,
            *render,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=_NamedWriteLoggerFactory(out),
        cache_logger_on_first_use=cache,
    )
    foreign: list[Any] = [structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, timestamper]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=foreign, processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render]
    )
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(number)
    _configured = True


def on_setup_logging(loglevel: int | str | None = None, **_: object) -> None:
    """Celery's `setup_logging` signal: the worker's main process configures logging, once."""
    if _configured:
        return
    configure_logging(get_settings().log_format, loglevel or logging.INFO)
