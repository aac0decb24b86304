"""What one Extism call owns on the host side: its config, vars and logs (its blocks are in the kernel's memory).

A `CallState` lives for one call only: vars never outlive it (a fresh instance per call, so nothing a plugin
keeps can reach the next job), and every collection in it is bounded. The runner's `Slot` says which call is
running, so the host functions find it without any global.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ...errors import MemoryLimitExceeded
from ..memory import GuestMemory

LOG_LEVELS = ("trace", "debug", "info", "warn", "error")  # the kernel's numbering: trace = 0 ... error = 4
_ENTRY_OVERHEAD = 64  # per var or log line: Extism counts its map entries' headers too


@dataclass(frozen=True)
class CallLimits:
    """The per-call bounds of what the host keeps for a plugin besides its linear memory."""

    var_bytes: int = 1024 * 1024  # Extism's default `max_var_bytes`
    log_bytes: int = 64 * 1024
    log_lines: int = 256
    log_level: int = LOG_LEVELS.index("info")
    message_chars: int = 1000  # of an error message a plugin sets


class CallState:
    """The host side of one call; host functions get it from the runner's `Slot`."""

    __slots__ = (
        "charge",
        "config",
        "error_text",
        "kernel",
        "limits",
        "log_bytes",
        "logs",
        "logs_dropped",
        "memory",
        "owed",
        "pending",
        "stash",
        "var_bytes",
        "vars",
    )

    def __init__(self, config: Mapping[str, str], limits: CallLimits, charge: Callable[[Any, int], bool]) -> None:
        self.limits = limits
        self.charge = charge  # take fuel through a host function's caller: False when too little is left
        self.owed = 0  # bytes of host work not yet taken from the fuel (host._charge)
        self.memory: GuestMemory | None = None  # the plugin's exported memory, once instantiated
        self.kernel: GuestMemory | None = None  # the kernel's memory, once instantiated
        self.pending: BaseException | None = None  # what a raw host function raised (see native.py)
        self.config = config
        self.stash = b""  # a config value or var on its way into a kernel block (host.take)
        self.error_text: bytes | None = None  # the block error_set pointed at, read at the end of the call
        self.vars: dict[str, bytes] = {}
        self.var_bytes = 0
        self.logs: list[dict[str, str]] = []  # {"level", "message"} (invalid UTF-8 replaced): a job result's shape
        self.log_bytes = 0
        self.logs_dropped = 0

    # -- the plugin's answer ---------------------------------------------------------------------------

    def error_message(self) -> str | None:
        """The message `error_set` pointed at, if any (the kernel keeps its block alive)."""
        if self.error_text is None:
            return None
        text = self.error_text.decode("utf-8", errors="replace")
        limit = self.limits.message_chars
        return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"

    # -- vars and logs -----------------------------------------------------------------------------------

    def set_var(self, key: str, value: bytes | None) -> None:
        """Set (or with None remove) a var, keeping all vars under `limits.var_bytes`."""
        old = self.vars.pop(key, None)
        if old is not None:
            self.var_bytes -= len(key.encode()) + len(old) + _ENTRY_OVERHEAD
        if value is None:
            return
        cost = len(key.encode()) + len(value) + _ENTRY_OVERHEAD
        if self.var_bytes + cost > self.limits.var_bytes:
            raise MemoryLimitExceeded(
                f"kernel var_set: vars would take {self.var_bytes + cost} bytes, over the limit of "
                f"{self.limits.var_bytes}",
                limit="vars",
            )
        self.vars[key] = value
        self.var_bytes += cost

    def log(self, level: int, raw: bytes) -> None:
        """Keep a log line while the call's log budget lasts; count the rest."""
        if level < self.limits.log_level:
            return
        cost = len(raw) + _ENTRY_OVERHEAD
        if len(self.logs) >= self.limits.log_lines or self.log_bytes + cost > self.limits.log_bytes:
            self.logs_dropped += 1
            return
        self.logs.append({"level": LOG_LEVELS[level], "message": raw.decode("utf-8", errors="replace")})
        self.log_bytes += cost

    def log_dicts(self) -> list[dict[str, str]]:
        lines = list(self.logs)
        if self.logs_dropped:
            lines.append({"level": "warn", "message": f"[{self.logs_dropped} more log lines dropped]"})
        return lines


class Slot:
    """The call a runner is running, which its host functions read (as `slot.state`) whenever the kernel calls out.

    A runner runs one call at a time: `enter` refuses a second while one is running (another thread using
    the same runner), since a host function would then see the wrong call's state. One runner per thread.
    """

    __slots__ = ("_busy", "state")

    def __init__(self) -> None:
        self.state: CallState | None = None
        self._busy = threading.Lock()

    def enter(self, state: CallState) -> None:
        """Make `state` the running call (pair with `leave`, in a `finally`)."""
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("this ExtismRunner is already running a call: use one runner per thread")
        self.state = state

    def leave(self) -> None:
        self.state = None
        self._busy.release()

    @contextmanager
    def running(self, state: CallState) -> Iterator[CallState]:
        self.enter(state)
        try:
            yield state
        finally:
            self.leave()

    def hand_over(self, exc: BaseException) -> None:
        """Keep what a raw host function raised for the runner, which raises it instead of the trap it became."""
        state = self.state
        if state is not None and state.pending is None:
            state.pending = exc
