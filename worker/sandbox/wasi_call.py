"""One bounded WASI call's state and the host's view of the guest (worker/sandbox/wasi_host.py defines the
functions): the deadline and the time slept, fuel charged up front, bounds-checked reads and writes of guest
memory, and the WASI preview 1 constants and struct layouts those functions use."""

from __future__ import annotations

import ctypes
import struct
import time

import wasmtime

from ..errors import DeadlineExceeded, FuelExhausted
from ..spec import Capabilities
from .wasi import CapturedStream

try:
    from wasmtime import _bindings as _native
except ImportError:  # pragma: no cover - a wasmtime-py without the module layout we know
    _native = None  # type: ignore[assignment]

MODULE = "wasi_snapshot_preview1"
# What one host call costs: a Python host function takes 30-100 us here (wasmtime-py's trampoline is half of
# it), about as long as 10**5 fuel units of guest code, so a guest looping on host calls runs out of fuel
# (deterministic) rather than into its deadline. The default budget of 10**8 pays for 1,000 host calls.
HOST_CALL_FUEL = 100_000
BYTE_FUEL = 1  # per byte a host call reads or writes (copying costs a fraction of a ns per byte)
RANDOM_BYTE_FUEL = 32  # per byte of randomness: os.urandom costs ~20 ns per byte on a small VM
NS_PER_FUEL = 1  # the virtual clock: one unit of fuel is one nanosecond
RANDOM_MAX_BYTES = 1024 * 1024
IOV_MAX = 1024  # iovecs per fd_read/fd_write (POSIX IOV_MAX)
MAX_SUBSCRIPTIONS = 1024  # per poll_oneoff
CLOCK_RESOLUTION_NS = 1_000

# errno values of WASI preview 1
SUCCESS, EBADF, EFAULT, EINVAL, ENOTSUP, ESPIPE, NOTCAPABLE = 0, 8, 21, 28, 58, 70, 76
# clock ids
REALTIME, MONOTONIC, PROCESS_CPUTIME, THREAD_CPUTIME = 0, 1, 2, 3
# event types, subscription flags, filetypes
EVENT_CLOCK, EVENT_FD_READ, EVENT_FD_WRITE = 0, 1, 2
SUBSCRIPTION_CLOCK_ABSTIME = 1
EVENTRWFLAGS_HANGUP = 1
FILETYPE_UNKNOWN = 0
RIGHT_FD_READ, RIGHT_FD_WRITE = 1 << 1, 1 << 6

U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
IOVEC = struct.Struct("<II")
SUBSCRIPTION = struct.Struct("<QB7xIxxxxQQH6x")  # 48 bytes; the clock variant (fd variant: its u32 at 16)
EVENT = struct.Struct("<QHB5xQH6x")  # 32 bytes: userdata, error, type, fd_readwrite.nbytes, .flags
FDSTAT = struct.Struct("<BxHxxxxQQ")  # 24 bytes


class WasiCall:
    """The state of one sandboxed call that the WASI host functions need."""

    __slots__ = ("capabilities", "closed", "deadline", "environ", "fuel", "memory", "realtime_base_ns", "slept_ns",
                 "started", "stderr", "stdout", "timeout_ms")  # fmt: skip

    def __init__(
        self,
        *,
        timeout_ms: int,
        fuel: int,
        stdout: CapturedStream,
        stderr: CapturedStream,
        capabilities: Capabilities | None = None,
    ) -> None:
        self.capabilities = capabilities or Capabilities()  # what the module's publication grants (default: nothing)
        self.environ = [f"{key}={value}".encode() + b"\0" for key, value in self.capabilities.env]
        self.timeout_ms = timeout_ms
        self.fuel = fuel  # the call's budget: fuel used = fuel - what the store has left
        self.stdout = stdout
        self.stderr = stderr
        self.started = time.monotonic()
        self.deadline = self.started + timeout_ms / 1000.0
        self.realtime_base_ns = int(time.time()) * 1_000_000_000
        self.slept_ns = 0
        self.closed: set[int] = set()
        self.memory: wasmtime.Memory | bool | None = None  # the guest's "memory" export (False: none)

    def remaining_ns(self) -> int:
        return int((self.deadline - time.monotonic()) * 1e9) - self.slept_ns

    def check_deadline(self) -> None:
        if self.remaining_ns() <= 0:
            raise DeadlineExceeded(f"call ran past its deadline of {self.timeout_ms} ms")


class HostView:
    """What one host function call works with: the caller's memory and fuel, and the call's `WasiCall`."""

    __slots__ = ("_data", "_size", "call", "caller", "ctx", "left")

    def __init__(self, caller: wasmtime.Caller, call: WasiCall, cost: int) -> None:
        self.call = call
        self.caller = caller
        self.ctx = caller._context()
        self._size = -1  # the memory is looked up on first use
        self._data = 0
        call.check_deadline()
        self.left = self._fuel_left()
        self.charge(cost)

    # -- fuel -------------------------------------------------------------------------------------------

    def _fuel_left(self) -> int:
        left = ctypes.c_uint64()
        error = _native.wasmtime_context_get_fuel(self.ctx, ctypes.byref(left))
        if error:
            wasmtime.WasmtimeError._from_ptr(error)  # frees it; fuel metering is always on in our engine
            return self.call.fuel
        return int(left.value)

    def charge(self, amount: int) -> None:
        if amount > self.left:
            self.left = 0
            _native.wasmtime_context_set_fuel(self.ctx, 0)
            raise FuelExhausted(f"call used up its fuel budget of {self.call.fuel} (in a WASI host call)")
        self.left -= amount
        error = _native.wasmtime_context_set_fuel(self.ctx, self.left)
        if error:
            wasmtime.WasmtimeError._from_ptr(error)

    def virtual_ns(self) -> int:
        return max(0, self.call.fuel - self.left) * NS_PER_FUEL + self.call.slept_ns

    # -- memory -----------------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        if self._size < 0:
            memory = self.call.memory
            if memory is None:  # the export handle stays valid for the store; base and size do not
                found = self.caller.get("memory")
                memory = self.call.memory = found if isinstance(found, wasmtime.Memory) else False
            if isinstance(memory, wasmtime.Memory):
                self._size = memory.data_len(self.caller)
                self._data = ctypes.addressof(memory.data_ptr(self.caller).contents) if self._size else 0
            else:
                self._size = 0
        return self._size

    @property
    def data(self) -> int:
        return self._data if self.size else 0

    def inside(self, ptr: int, length: int) -> bool:
        return 0 <= ptr and 0 <= length and ptr + length <= self.size

    def read(self, ptr: int, length: int) -> bytes | None:
        if not self.inside(ptr, length):
            return None
        return ctypes.string_at(self.data + ptr, length) if length else b""

    def write(self, ptr: int, data: bytes) -> bool:
        if not self.inside(ptr, len(data)):
            return False
        if data:
            ctypes.memmove(self.data + ptr, data, len(data))
        return True

    def iovecs(self, iovs: int, count: int) -> list[tuple[int, int]] | int:
        """The (ptr, len) list, each inside memory; or an errno."""
        if count > IOV_MAX:
            return EINVAL
        raw = self.read(iovs, count * IOVEC.size)
        if raw is None:
            return EFAULT
        found = list(IOVEC.iter_unpack(raw))
        for ptr, length in found:
            if not self.inside(ptr, length):
                return EFAULT
        return found


def u32(value: int) -> int:
    return value & 0xFFFF_FFFF
