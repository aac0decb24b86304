"""WASI with nothing granted beyond what the module's publication allows (`spec.Capabilities`): no preopened
directories, no arguments, empty stdin; the environment is the publication's; clocks and randomness answer
`notcapable` unless granted.

stdout and stderr go into a bounded in-memory buffer per call (the rest is counted and dropped), so a chatty
module can neither fill the worker's disk or logs nor slow it down.
"""

from __future__ import annotations

import wasmtime

from ..spec import Capabilities

WASI_MODULE = "wasi_snapshot_preview1"
NOTCAPABLE = 76  # WASI errno `notcapable`: the answer of a function the publication does not grant
_I32, _I64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
# The WASI functions each grantable capability covers, with their parameter types (each returns an errno).
GATED: dict[str, dict[str, list[wasmtime.ValType]]] = {
    "clock": {"clock_time_get": [_I32, _I64, _I32], "clock_res_get": [_I32, _I32], "poll_oneoff": [_I32] * 4},
    "random": {"random_get": [_I32, _I32]},
}


class CapturedStream:
    """Keeps the first `limit` bytes written to one stream, counts the rest."""

    __slots__ = ("chunks", "dropped", "kept", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.kept = 0
        self.dropped = 0

    def write(self, data: bytes) -> int:
        room = self.limit - self.kept
        if room > 0:
            part = data[:room]
            self.chunks.append(part)
            self.kept += len(part)
        self.dropped += max(0, len(data) - max(room, 0))
        return len(data)  # tell the guest everything was written, so it does not retry forever

    def text(self) -> str:
        out = b"".join(self.chunks).decode("utf-8", errors="replace")
        return out + (f"\n[... {self.dropped} more bytes dropped]" if self.dropped else "")


def denied_wasi(
    stdout: CapturedStream, stderr: CapturedStream, capabilities: Capabilities | None = None
) -> wasmtime.WasiConfig:
    """A WASI context that grants nothing but the publication's environment; output goes to the given streams."""
    config = wasmtime.WasiConfig()
    config.stdout_custom = stdout.write
    config.stderr_custom = stderr.write
    if capabilities is not None and capabilities.env:
        config.env = [list(pair) for pair in capabilities.env]
    return config


def _notcapable(*_: int) -> int:
    return NOTCAPABLE


def wasi_linker(engine: wasmtime.Engine, *, clock: bool, random: bool) -> wasmtime.Linker:
    """A Linker with WASI, in which the functions of every capability not granted answer `notcapable`."""
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    linker.allow_shadowing = True
    for capability, functions in GATED.items():
        if {"clock": clock, "random": random}[capability]:
            continue
        for name, params in functions.items():
            linker.define_func(WASI_MODULE, name, wasmtime.FuncType(params, [_I32]), _notcapable)
    return linker
