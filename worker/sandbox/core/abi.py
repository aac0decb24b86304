"""The ABI adapters: how input goes into a module's memory and how its answer comes out.

Each adapter takes the instance (a `Guest`: `call(name, *ints)` and its bounds-checked `mem`), the function
name, the input bytes, the output limit and `free`, and returns the raw answer bytes (decoded and size-checked
by the caller). Every pointer and length the module returns is checked by `GuestMemory` before use.
`REQUIRED_EXPORTS` is what the registry checks at load time.

`free`: whether to hand the input and the answer back to the module's allocator after the answer is copied
out. It is only worth doing for an instance that lives on; the runtime drops every instance right after its
call (a fresh Store per job or per chunk), and freeing memory of a store about to be deleted is pure cost, so
it passes `free=False`. The answer is validated the same either way.
"""

from __future__ import annotations

from collections.abc import Callable

from ...errors import InvalidInput, InvalidOutput, ModuleTrap
from ...spec import CORE_ABIS
from ..guest import Guest
from ..validate import check_output_length, decode_frames, encode_frames

U32 = 0xFFFF_FFFF
U64 = 0xFFFF_FFFF_FFFF_FFFF

# export name -> accepted (params, results) signatures, as wasmtime prints value types;
# "{F}" stands for the declared function.
Signature = tuple[tuple[str, ...], tuple[str, ...]]
REQUIRED_EXPORTS: dict[str, dict[str, tuple[Signature, ...]]] = {
    "packed": {
        "alloc": ((("i32",), ("i32",)),),
        "dealloc": ((("i32", "i32"), ()),),
        "{F}": ((("i32", "i32"), ("i64",)),),
    },
    "seed-rust": {
        "wasm_allocate": ((("i32",), ("i32",)),),
        "wasm_deallocate": ((("i32",), ("i32",)),),
        "{F}": ((("i32", "i32"), ("i32",)),),
    },
    "seed-c": {
        "wasm_allocate": ((("i32",), ("i32",)),),
        "wasm_deallocate": ((("i32",), ("i32",)),),
        "{F}": ((("i32",), ("i32",)),),
    },
    "scalar": {"{F}": (((), ("i32",)), ((), ("i64",)))},
}
BATCH_SIGNATURES: tuple[Signature, ...] = ((("i32", "i32"), ("i64",)),)
NEEDS_MEMORY = {"packed", "seed-rust", "seed-c"}

Adapter = Callable[[Guest, str, bytes, int, bool], bytes]


def _u32(value: int) -> int:
    return value & U32


def _unpack(value: int) -> tuple[int, int]:
    value &= U64
    return value >> 32, value & U32


def _reported_failure(function: str) -> ModuleTrap:
    return ModuleTrap(f"{function} returned 0: the module reported failure", trap_code="reported_failure")


def call_packed(guest: Guest, function: str, data: bytes, max_output: int, free: bool = True) -> bytes:
    mem, call = guest.mem, guest.call
    in_ptr = _u32(call("alloc", len(data)))
    if in_ptr == 0 and data:
        raise InvalidOutput(f"alloc({len(data)}) returned 0 (allocation failed)")
    mem.write(in_ptr, data, "alloc() result")
    out_ptr, out_len = _unpack(call(function, in_ptr, len(data)))
    if out_ptr == 0 and out_len == 0:
        raise _reported_failure(function)  # a null answer: the module's "failed" (e.g. out of memory)
    check_output_length(out_len, max_bytes=max_output)
    out = mem.read(out_ptr, out_len, f"{function}() output")
    if free:
        call("dealloc", in_ptr, len(data))
        call("dealloc", out_ptr, out_len)
    return out


def call_seed_rust(guest: Guest, function: str, data: bytes, max_output: int, free: bool = True) -> bytes:
    mem, call = guest.mem, guest.call
    in_ptr = _u32(call("wasm_allocate", len(data)))
    if in_ptr == 0 and data:
        raise InvalidOutput(f"wasm_allocate({len(data)}) returned 0 (allocation failed)")
    mem.write(in_ptr, data, "wasm_allocate() result")
    record = _u32(call(function, in_ptr, len(data)))
    if record == 0:
        raise _reported_failure(function)
    out_ptr, out_len = mem.read_u32_pair(record, f"{function}() result record")
    check_output_length(out_len, max_bytes=max_output)
    out = mem.read(out_ptr, out_len, f"{function}() output")
    if free:
        call("wasm_deallocate", in_ptr)
        call("wasm_deallocate", out_ptr)
        call("wasm_deallocate", record)
    return out


def call_seed_c(guest: Guest, function: str, data: bytes, max_output: int, free: bool = True) -> bytes:
    if b"\0" in data:
        raise InvalidInput(f"input contains a NUL byte at {data.index(0)}, which a C-string ABI cannot carry")
    mem, call = guest.mem, guest.call
    in_ptr = _u32(call("wasm_allocate", len(data) + 1))
    if in_ptr == 0:
        raise InvalidOutput(f"wasm_allocate({len(data) + 1}) returned 0 (allocation failed)")
    mem.write(in_ptr, data + b"\0", "wasm_allocate() result")
    out_ptr = _u32(call(function, in_ptr))
    if out_ptr == 0:
        raise _reported_failure(function)
    out = mem.read_cstring(out_ptr, max_output, f"{function}() output")
    if free:
        call("wasm_deallocate", in_ptr)
        call("wasm_deallocate", out_ptr)
    return out


def call_scalar(guest: Guest, function: str, data: bytes, max_output: int, free: bool = True) -> bytes:
    if data:
        raise InvalidInput(f"{function} takes no input, but {len(data)} bytes were given")
    return str(guest.call(function)).encode()


ADAPTERS: dict[str, Adapter] = {
    "packed": call_packed,
    "seed-rust": call_seed_rust,
    "seed-c": call_seed_c,
    "scalar": call_scalar,
}
assert set(ADAPTERS) == set(REQUIRED_EXPORTS) == set(CORE_ABIS), "one adapter and one export table per core ABI"


def call_batch(
    guest: Guest, batch_function: str, items: list[bytes], max_item_output: int, free: bool = True
) -> list[bytes]:
    """One call of `F_many` over a framed list; the answer must frame exactly one output per input."""
    block = encode_frames(items)
    max_block = 4 + len(items) * (4 + max_item_output)
    raw = call_packed(guest, batch_function, block, max_block, free)
    return decode_frames(raw, expected=len(items), max_item_bytes=max_item_output)
