"""The Extism kernel (`extism:host/env`), implemented by the host over the blocks of the running call.

Same names, signatures and meaning as Extism's kernel and host functions, with every offset checked: a load or
store outside a live block, or a handle that is not a live block's offset, traps (`ModuleTrap`, trap code
`bad_offset` / `bad_handle`) where Extism would read or write whatever lies there; `length` of an unknown offset
is 0, `free` of one does nothing, as in Extism. Functions that take a handle (config_get, var_get, var_set, the
log functions) free it, as Extism does. `http_request` is denied (`ModuleTrap`, trap code `http_denied`).

Host work that copies or zeroes bytes is charged to the call's fuel (one unit per `BYTES_PER_FUEL` bytes, settled
every `CHARGE_EVERY` bytes), so a plugin cannot get unbounded host work for free; every such piece is itself
bounded by the call's caps.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any, Final, cast

import wasmtime

from ...errors import FuelExhausted, InvalidOutput, ModuleTrap
from ..memory import GuestMemory
from .state import LOG_LEVELS, CallState

MODULE: Final = "extism:host/env"
BYTES_PER_FUEL: Final = 8
CHARGE_EVERY: Final = 4096  # bytes of host work owed before they are taken from the fuel (see _charge)
ABORT: Final = ("env", "abort")  # AssemblyScript's; Extism does not provide it (see plugin.py)
_ABORT_MESSAGE_BYTES: Final = 2000
_I64 = struct.Struct("<q")
_MASK: Final = (1 << 64) - 1
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


# -- memory blocks ------------------------------------------------------------------------------------


def alloc(state: CallState, caller: Any, length: int) -> int:
    offset = state.blocks.alloc(length & _MASK)  # refused over the cap before any byte is allocated
    _charge(state, caller, length & _MASK)
    return offset


def free(state: CallState, offset: int) -> None:
    offset &= _MASK
    if offset and offset in (state.output[0], state.error):  # read after the call returns: keep them
        return
    if offset == state.input:
        state.input_length = 0  # as in the kernel: the input is gone
    state.blocks.free(offset)


def length(state: CallState, offset: int) -> int:
    return state.blocks.length(offset & _MASK)


def load_u8(state: CallState, address: int) -> int:
    buf, at = state.blocks.locate(address & _MASK, 1, "load_u8")
    return buf[at]


def load_u64(state: CallState, address: int) -> int:
    buf, at = state.blocks.locate(address & _MASK, 8, "load_u64")
    return cast(int, _I64.unpack_from(buf, at)[0])


def store_u8(state: CallState, address: int, value: int) -> None:
    buf, at = state.blocks.locate(address & _MASK, 1, "store_u8")
    buf[at] = value & 0xFF


def store_u64(state: CallState, address: int, value: int) -> None:
    buf, at = state.blocks.locate(address & _MASK, 8, "store_u64")
    _I64.pack_into(buf, at, value)


# -- input, output, error -------------------------------------------------------------------------------


def input_length(state: CallState) -> int:
    return state.input_length


def input_offset(state: CallState) -> int:
    return state.input


def _input_at(state: CallState, offset: int, size: int, what: str) -> tuple[bytearray, int]:
    offset &= _MASK
    if offset + size > state.input_length:
        raise ModuleTrap(
            f"kernel {what}: input bytes [{offset}, {offset + size}) are past the input's {state.input_length}",
            trap_code="bad_offset",
        )
    return state.blocks.locate(state.input + offset, size, what)


def input_load_u8(state: CallState, offset: int) -> int:
    buf, at = _input_at(state, offset, 1, "input_load_u8")
    return buf[at]


def input_load_u64(state: CallState, offset: int) -> int:
    buf, at = _input_at(state, offset, 8, "input_load_u64")
    return cast(int, _I64.unpack_from(buf, at)[0])


def output_set(state: CallState, offset: int, size: int) -> None:
    offset, size = offset & _MASK, size & _MASK
    state.blocks.span(offset, size, "output_set")  # InvalidOutput unless inside one live block
    state.output = (offset, size)


def error_set(state: CallState, offset: int) -> None:
    offset &= _MASK
    if offset and state.blocks.get(offset) is None:
        raise ModuleTrap(
            f"kernel error_set: {offset:#x} is not the offset of a live memory block", trap_code="bad_handle"
        )
    state.error = offset


def error_get(state: CallState) -> int:
    return state.error


# -- config, vars, logs, http -----------------------------------------------------------------------------


def _take_text(state: CallState, offset: int, what: str) -> str:
    """The UTF-8 text of a handle the host takes ownership of (and frees)."""
    offset &= _MASK
    raw = state.blocks.handle(offset, what)
    state.blocks.free(offset)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModuleTrap(f"kernel {what}: the key is not valid UTF-8", trap_code="bad_handle") from None


def config_get(state: CallState, caller: Any, key_offset: int) -> int:
    value = state.config.get(_take_text(state, key_offset, "config_get"))
    if value is None:
        return 0
    data = value.encode("utf-8")
    _charge(state, caller, len(data))
    return state.blocks.new(data)


def var_get(state: CallState, caller: Any, key_offset: int) -> int:
    value = state.vars.get(_take_text(state, key_offset, "var_get"))
    if value is None:
        return 0
    _charge(state, caller, len(value))
    return state.blocks.new(value)


def var_set(state: CallState, caller: Any, key_offset: int, value_offset: int) -> None:
    key = _take_text(state, key_offset, "var_set")
    value_offset &= _MASK
    if value_offset == 0:
        state.set_var(key, None)
        return
    value = state.blocks.handle(value_offset, "var_set")
    _charge(state, caller, len(value))
    state.set_var(key, value)
    state.blocks.free(value_offset)


def _logger(level: int) -> Callable[[CallState, int], None]:
    def log(state: CallState, offset: int) -> None:
        offset &= _MASK
        raw = state.blocks.handle(offset, f"log_{LOG_LEVELS[level]}")
        state.blocks.free(offset)
        state.log(level, raw)

    return log


def get_log_level(state: CallState) -> int:
    return state.limits.log_level


def http_request(state: CallState, request_offset: int, body_offset: int) -> int:
    raw = state.blocks.handle(request_offset & _MASK, "http_request")
    url = "an unreadable request"
    try:
        request = json.loads(raw)
        if isinstance(request, dict) and isinstance(request.get("url"), str):
            url = request["url"][:200]
    except (ValueError, RecursionError):  # not JSON, or nested too deep for the parser: the URL stays unknown
        pass
    raise ModuleTrap(f"http_request is denied to plugins (request to {url})", trap_code="http_denied")


def http_status_code(state: CallState) -> int:
    return 0  # no request is ever made


def http_headers(state: CallState) -> int:
    return 0


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


# -- the table ------------------------------------------------------------------------------------------

# name -> (params, results, function, needs the caller)
FUNCTIONS: Final[dict[str, tuple[tuple[wasmtime.ValType, ...], tuple[wasmtime.ValType, ...], Any, bool]]] = {
    "alloc": ((I64,), (I64,), alloc, True),
    "free": ((I64,), (), free, False),
    "length": ((I64,), (I64,), length, False),
    "length_unsafe": ((I64,), (I64,), length, False),  # the checked length: the same answer when valid
    "load_u8": ((I64,), (I32,), load_u8, False),
    "load_u64": ((I64,), (I64,), load_u64, False),
    "store_u8": ((I64, I32), (), store_u8, False),
    "store_u64": ((I64, I64), (), store_u64, False),
    "input_length": ((), (I64,), input_length, False),
    "input_offset": ((), (I64,), input_offset, False),
    "input_load_u8": ((I64,), (I32,), input_load_u8, False),
    "input_load_u64": ((I64,), (I64,), input_load_u64, False),
    "output_set": ((I64, I64), (), output_set, False),
    "error_set": ((I64,), (), error_set, False),
    "error_get": ((), (I64,), error_get, False),
    "config_get": ((I64,), (I64,), config_get, True),
    "var_get": ((I64,), (I64,), var_get, True),
    "var_set": ((I64, I64), (), var_set, True),
    "http_request": ((I64, I64), (I64,), http_request, False),
    "http_status_code": ((), (I32,), http_status_code, False),
    "http_headers": ((), (I64,), http_headers, False),
    "get_log_level": ((), (I32,), get_log_level, False),
    **{f"log_{name}": ((I64,), (), _logger(level), False) for level, name in enumerate(LOG_LEVELS)},
}


def signature(name: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The kernel function's (params, results) as type names, or None if the kernel has no such function."""
    entry = FUNCTIONS.get(name)
    if entry is None:
        return None
    return tuple(str(t) for t in entry[0]), tuple(str(t) for t in entry[1])
