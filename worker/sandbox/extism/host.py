"""The host's part of the Extism kernel: what kernel.wat imports from `wasmq:kernel`, and AssemblyScript's abort.

The kernel module checks every handle before it calls out, and hands over plain spans of its own memory
(pointer, length); they are read through `GuestMemory`, bounds-checked once more. Functions that take a handle
(config_get, var_get, var_set, the log functions) free it in the kernel afterwards, as Extism does.
`http_request` is denied (`ModuleTrap`, trap code `http_denied`).

Bytes the host copies into the kernel's memory (config values, vars) are charged to the call's fuel (one unit
per `BYTES_PER_FUEL` bytes, settled every `CHARGE_EVERY` bytes), so a plugin cannot get unbounded host work for
free; what the kernel itself does is wasm and costs fuel like the plugin's own code.
"""

from __future__ import annotations

import json
from typing import Any, Final, cast

import wasmtime

from ...errors import FuelExhausted, InvalidOutput, ModuleTrap
from ..memory import GuestMemory
from .state import CallState

BYTES_PER_FUEL: Final = 8
CHARGE_EVERY: Final = 4096  # bytes of host work owed before they are taken from the fuel (see _charge)
_ABORT_MESSAGE_BYTES: Final = 2000
_U32: Final = 0xFFFF_FFFF
I32, I64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()


def _charge(state: CallState, caller: Any, nbytes: int) -> None:
    """Charge `nbytes` of host work: once `CHARGE_EVERY` bytes are owed, take them (one unit per
    `BYTES_PER_FUEL`) from the caller's fuel, or stop the call when it has too little. Settling in batches keeps
    the fuel calls (two C calls each) off the path of the small copies every call makes; what a call can owe
    unsettled is under `CHARGE_EVERY` bytes."""
    owed = state.owed + nbytes
    if owed < CHARGE_EVERY:
        state.owed = owed
        return
    state.owed = owed % BYTES_PER_FUEL
    if not state.charge(caller, owed // BYTES_PER_FUEL):
        raise FuelExhausted(f"call used up its fuel budget in host work ({owed} bytes copied)")


def charge_public(caller: wasmtime.Caller, units: int) -> bool:
    """`CallState.charge` on the public API. Store's fuel methods only use the context they are called on
    (`_context()`), which a Caller has: the running store's, as the C API wants it during a call."""
    context = cast(wasmtime.Store, caller)
    left = wasmtime.Store.get_fuel(context)
    wasmtime.Store.set_fuel(context, left - units if left >= units else 0)
    return left >= units


def _read(state: CallState, ptr: int, length: int, what: str) -> bytes:
    kernel = state.kernel
    if kernel is None:  # pragma: no cover - the kernel calls out only once it exists
        raise ModuleTrap(f"kernel {what}: no kernel memory", trap_code="kernel")
    return kernel.read(ptr & _U32, length & _U32, f"kernel {what}")


def _text(state: CallState, ptr: int, length: int, what: str) -> str:
    try:
        return _read(state, ptr, length, what).decode("utf-8")
    except UnicodeDecodeError:
        raise ModuleTrap(f"kernel {what}: the key is not valid UTF-8", trap_code="bad_handle") from None


def config_get(state: CallState, key_ptr: int, key_len: int) -> int:
    """The length of the config value of the key (-1: none); `take` then copies it into the kernel's block."""
    value = state.config.get(_text(state, key_ptr, key_len, "config_get"))
    if value is None:
        return -1
    state.stash = value.encode("utf-8")
    return len(state.stash)


def var_get(state: CallState, key_ptr: int, key_len: int) -> int:
    value = state.vars.get(_text(state, key_ptr, key_len, "var_get"))
    if value is None:
        return -1
    state.stash = value
    return len(value)


def take(state: CallState, caller: Any, dst: int) -> None:
    data, state.stash = state.stash, b""
    _charge(state, caller, len(data))
    if state.kernel is not None:
        state.kernel.write(dst & _U32, data, "kernel take")


def var_set(  # noqa: PLR0917 - the parameters are the import's, in its order
    state: CallState, caller: Any, key_ptr: int, key_len: int, value_ptr: int, value_len: int
) -> None:
    key = _text(state, key_ptr, key_len, "var_set")
    if value_len < 0:  # the plugin passed value 0: remove the var
        state.set_var(key, None)
        return
    value = _read(state, value_ptr, value_len, "var_set")
    _charge(state, caller, len(value))
    state.set_var(key, value)


def log(state: CallState, level: int, ptr: int, length: int) -> None:
    state.log(level & 0x7, _read(state, ptr, length, "log"))


def http_request(state: CallState, ptr: int, length: int) -> None:
    raw = _read(state, ptr, length, "http_request")
    url = "an unreadable request"
    try:
        request = json.loads(raw)
        if isinstance(request, dict) and isinstance(request.get("url"), str):
            url = request["url"][:200]
    except (ValueError, RecursionError):  # not JSON, or nested too deep for the parser: the URL stays unknown
        pass
    raise ModuleTrap(f"http_request is denied to plugins (request to {url})", trap_code="http_denied")


def abort(state: CallState, message: int, file: int, line: int, column: int) -> None:
    """AssemblyScript's `env.abort(message, file, line, column)`: end the call with what it says."""
    memory = state.memory
    text, where = _as_string(memory, message), _as_string(memory, file)
    raise ModuleTrap(
        f"plugin aborted: {text} at {where}:{line & 0xFFFF_FFFF}:{column & 0xFFFF_FFFF}", trap_code="abort"
    )


def _as_string(memory: GuestMemory | None, ptr: int) -> str:
    """An AssemblyScript string (UTF-16LE, its byte length in the u32 before it), bounded; '?' if unreadable."""
    ptr &= 0xFFFF_FFFF
    if memory is None or ptr < 4:
        return "?"
    try:
        size = int.from_bytes(memory.read(ptr - 4, 4, "abort message length"), "little")
        return memory.read(ptr, min(size, _ABORT_MESSAGE_BYTES), "abort message").decode("utf-16-le", errors="replace")
    except InvalidOutput:  # a made-up pointer: the abort still ends the call
        return "?"


# name -> (params, results, function, needs the caller); all but abort are imported by kernel.wat
FUNCTIONS: Final[dict[str, tuple[tuple[wasmtime.ValType, ...], tuple[wasmtime.ValType, ...], Any, bool]]] = {
    "config_get": ((I32, I32), (I64,), config_get, False),
    "var_get": ((I32, I32), (I64,), var_get, False),
    "var_set": ((I32, I32, I32, I64), (), var_set, True),
    "take": ((I32,), (), take, True),
    "log": ((I32, I32, I32), (), log, False),
    "http_request": ((I32, I32), (), http_request, False),
}
ABORT_FUNCTION: Final = ((I32, I32, I32, I32), (), abort, False)
