"""WASI preview 1 implemented by the host, in Python, so that every host call is bounded and paid for.

wasmtime's own WASI (`Linker.define_wasi`) runs `poll_oneoff`, `fd_write`, `random_get` natively: a guest
could sleep for 10 s under a 100 ms deadline (epoch interruption cannot stop a host call) or have the host copy
gigabytes for a handful of fuel. Here every function of `wasi_snapshot_preview1` is defined on the Linker by
`BoundedWasi.define`, and each one, before doing anything:
- checks the call's deadline (wall time since the call started plus the time it has "slept", see below) and
  raises `DeadlineExceeded` once it has passed;
- charges fuel: `HOST_CALL_FUEL` per call plus `BYTE_FUEL` per byte it reads or writes (`RANDOM_BYTE_FUEL`
  per random byte), taken from the store's fuel before the work is done (`FuelExhausted` if the budget cannot
  pay), at rates that make fuel, not the deadline, what stops a guest that loops on host calls;
- checks every pointer and length against the guest's memory (`EFAULT`, never a Python slice surprise).

What a guest sees:
- what the module's publication grants (`spec.Capabilities`), nothing else: clocks and `poll_oneoff` answer
  `notcapable` unless `clock` is granted, `random_get` unless `random` is, the environment is exactly the
  publication's `env`, and stdout/stderr keep at most its `output_bytes`;
- no arguments, no preopened directories; stdin is empty (reads give end of file);
- stdout and stderr go into the call's bounded `CapturedStream`s; the guest is told everything was written,
  the bytes past the capture limit are counted, not copied, but paid for;
- `random_get`: real randomness (`os.urandom`: guests use it for hash seeds and keys, a predictable value
  would be a security bug), at most `RANDOM_MAX_BYTES` per call (`EINVAL` beyond);
- clocks are virtual, so a guest cannot time anything finer than its own work (no timing side channels) and
  a retried job sees the same monotonic times: the monotonic and the CPU-time clocks read
  `fuel used so far x NS_PER_FUEL + time slept`, the realtime clock the call's start time truncated to whole
  seconds plus the same amount; resolution 1 us;
- `poll_oneoff` never sleeps: clock subscriptions complete at once and their timeout is added to the virtual
  clock and counts against the deadline (a guest asking to sleep past its deadline gets `DeadlineExceeded`
  right away, not after the sleep); stdout/stderr subscriptions are ready, stdin is ready (at end of file);
- `proc_exit(n)` ends the call as `ModuleTrap` with trap_code "exit" and exit_code n; `sched_yield` returns;
- everything else (files, sockets, `fd_*` on other descriptors, `proc_raise`) does nothing and returns an
  error code: `EBADF` for a descriptor that does not exist (every one but 0, 1, 2), `ENOTSUP` otherwise.

Per-call state (deadline, budget, capture buffers, slept time) lives in a `WasiCall` that the runtime starts
with `BoundedWasi.begin` before instantiating and ends after the call; host functions find it through a
thread-local, so one Linker (and one InstancePre per module) serves every call, on the C-API hot path too.
A host function that stops the call raises the typed error; wasmtime-py hands it back to the caller of the
guest (`worker.sandbox.capi` does the same on the fast path).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import Any

import wasmtime

from ..errors import DeadlineExceeded, ModuleTrap
from ..spec import Capabilities
from .wasi import CapturedStream

try:
    from wasmtime import _bindings as _native
except ImportError:  # pragma: no cover - a wasmtime-py without the module layout we know
    _native = None  # type: ignore[assignment]

from .wasi_call import (
    BYTE_FUEL,
    CLOCK_RESOLUTION_NS,
    EBADF,
    EFAULT,
    EINVAL,
    ENOTSUP,
    ESPIPE,
    EVENT,
    EVENT_CLOCK,
    EVENT_FD_READ,
    EVENT_FD_WRITE,
    EVENTRWFLAGS_HANGUP,
    FDSTAT,
    FILETYPE_UNKNOWN,
    HOST_CALL_FUEL,
    MAX_SUBSCRIPTIONS,
    MODULE,
    MONOTONIC,
    NOTCAPABLE,
    PROCESS_CPUTIME,
    RANDOM_BYTE_FUEL,
    RANDOM_MAX_BYTES,
    REALTIME,
    RIGHT_FD_READ,
    RIGHT_FD_WRITE,
    SUBSCRIPTION,
    SUBSCRIPTION_CLOCK_ABSTIME,
    SUCCESS,
    THREAD_CPUTIME,
    U32,
    U64,
    HostView,
    WasiCall,
    u32,
)

Handler = Callable[..., Any]


class BoundedWasi:
    """Defines every `wasi_snapshot_preview1` function on a Linker; `begin`/`end` frame one call."""

    def __init__(self) -> None:
        self._local = threading.local()

    # -- one call -----------------------------------------------------------------------------------------

    def begin(
        self,
        *,
        timeout_ms: int,
        fuel: int,
        stdout: CapturedStream,
        stderr: CapturedStream,
        capabilities: Capabilities | None = None,
    ) -> WasiCall:
        call = WasiCall(timeout_ms=timeout_ms, fuel=fuel, stdout=stdout, stderr=stderr, capabilities=capabilities)
        self._local.call = call
        return call

    def end(self) -> None:
        self._local.call = None

    def _call(self) -> WasiCall:
        call: WasiCall | None = getattr(self._local, "call", None)
        if call is None:
            raise ModuleTrap("a WASI function was called outside of a sandboxed call", trap_code="host")
        return call

    # -- the Linker -------------------------------------------------------------------------------------

    def define(self, linker: wasmtime.Linker) -> None:
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        kinds = {"i": i32, "I": i64}
        for name, (params, handler) in self._functions().items():
            results = [] if name == "proc_exit" else [i32]
            ty = wasmtime.FuncType([kinds[p] for p in params], results)
            linker.define_func(MODULE, name, ty, handler, access_caller=True)

    def _host(self, caller: wasmtime.Caller, cost: int = 0) -> HostView:
        return HostView(caller, self._call(), HOST_CALL_FUEL + cost)

    def _functions(self) -> dict[str, tuple[str, Handler]]:
        """name -> (parameter kinds, i = i32 / I = i64, handler); every function returns an errno except
        proc_exit."""
        fns: dict[str, tuple[str, Handler]] = {
            "args_get": ("ii", self._nothing),
            "args_sizes_get": ("ii", self._zero_sizes),
            "environ_get": ("ii", self._environ_get),
            "environ_sizes_get": ("ii", self._environ_sizes_get),
            "clock_res_get": ("ii", self._clock_res_get),
            "clock_time_get": ("iIi", self._clock_time_get),
            "fd_close": ("i", self._fd_close),
            "fd_fdstat_get": ("ii", self._fd_fdstat_get),
            "fd_filestat_get": ("ii", self._fd_unsupported),
            "fd_prestat_get": ("ii", self._bad_fd),
            "fd_prestat_dir_name": ("iii", self._bad_fd),
            "fd_read": ("iiii", self._fd_read),
            "fd_seek": ("iIii", self._fd_seek),
            "fd_tell": ("ii", self._fd_seek),
            "fd_write": ("iiii", self._fd_write),
            "poll_oneoff": ("iiii", self._poll_oneoff),
            "proc_exit": ("i", self._proc_exit),
            "random_get": ("ii", self._random_get),
            "sched_yield": ("", self._nothing),
        }
        unsupported = {  # descriptor operations: EBADF unless on 0-2, then ENOTSUP
            "fd_advise": "iIIi",
            "fd_allocate": "iII",
            "fd_datasync": "i",
            "fd_fdstat_set_flags": "ii",
            "fd_fdstat_set_rights": "iII",
            "fd_filestat_set_size": "iI",
            "fd_filestat_set_times": "iIIi",
            "fd_pread": "iiiIi",
            "fd_pwrite": "iiiIi",
            "fd_readdir": "iiiIi",
            "fd_renumber": "ii",
            "fd_sync": "i",
            "path_create_directory": "iii",
            "path_filestat_get": "iiiii",
            "path_filestat_set_times": "iiiiIIi",
            "path_link": "iiiiiii",
            "path_open": "iiiiiIIii",
            "path_readlink": "iiiiii",
            "path_remove_directory": "iii",
            "path_rename": "iiiiii",
            "path_unlink_file": "iii",
            "sock_accept": "iii",
            "sock_recv": "iiiiii",
            "sock_send": "iiiii",
            "sock_shutdown": "ii",
        }
        for name, params in unsupported.items():
            fns[name] = (params, self._fd_unsupported)
        fns["path_symlink"] = ("iiiii", self._path_symlink)  # its descriptor is the third argument
        fns["proc_raise"] = ("i", self._not_supported)
        return fns

    # -- handlers ---------------------------------------------------------------------------------------

    def _nothing(self, caller: wasmtime.Caller, *_: int) -> int:
        self._host(caller)
        return SUCCESS

    def _not_supported(self, caller: wasmtime.Caller, *_: int) -> int:
        self._host(caller)
        return ENOTSUP

    def _bad_fd(self, caller: wasmtime.Caller, *_: int) -> int:
        self._host(caller)
        return EBADF

    def _fd_unsupported(self, caller: wasmtime.Caller, fd: int, *_: int) -> int:
        host = self._host(caller)
        return ENOTSUP if self._is_stdio(host, fd) else EBADF

    def _path_symlink(self, caller: wasmtime.Caller, _old: int, _old_len: int, fd: int, *_: int) -> int:
        return self._fd_unsupported(caller, fd)

    def _zero_sizes(self, caller: wasmtime.Caller, count_ptr: int, size_ptr: int) -> int:
        host = self._host(caller)
        zero = U32.pack(0)
        if not (host.write(u32(count_ptr), zero) and host.write(u32(size_ptr), zero)):
            return EFAULT
        return SUCCESS

    def _environ_sizes_get(self, caller: wasmtime.Caller, count_ptr: int, size_ptr: int) -> int:
        host = self._host(caller)
        environ = host.call.environ
        count, size = U32.pack(len(environ)), U32.pack(sum(len(v) for v in environ))
        return SUCCESS if host.write(u32(count_ptr), count) and host.write(u32(size_ptr), size) else EFAULT

    def _environ_get(self, caller: wasmtime.Caller, pointers: int, buffer: int) -> int:
        host = self._host(caller)
        at = u32(buffer)
        for index, value in enumerate(host.call.environ):
            if not (host.write(u32(pointers) + 4 * index, U32.pack(at & 0xFFFF_FFFF)) and host.write(at, value)):
                return EFAULT
            at += len(value)
        return SUCCESS

    @staticmethod
    def _is_stdio(host: HostView, fd: int) -> bool:
        return u32(fd) in (0, 1, 2) and u32(fd) not in host.call.closed

    def _clock_res_get(self, caller: wasmtime.Caller, clock: int, ptr: int) -> int:
        host = self._host(caller)
        if not host.call.capabilities.clock:
            return NOTCAPABLE
        if u32(clock) not in (REALTIME, MONOTONIC, PROCESS_CPUTIME, THREAD_CPUTIME):
            return EINVAL
        return SUCCESS if host.write(u32(ptr), U64.pack(CLOCK_RESOLUTION_NS)) else EFAULT

    def _now(self, host: HostView, clock: int) -> int | None:
        if clock == REALTIME:
            return host.call.realtime_base_ns + host.virtual_ns()
        if clock in (MONOTONIC, PROCESS_CPUTIME, THREAD_CPUTIME):
            return host.virtual_ns()
        return None

    def _clock_time_get(self, caller: wasmtime.Caller, clock: int, _precision: int, ptr: int) -> int:
        host = self._host(caller)
        if not host.call.capabilities.clock:
            return NOTCAPABLE
        now = self._now(host, u32(clock))
        if now is None:
            return EINVAL
        now -= now % CLOCK_RESOLUTION_NS
        return SUCCESS if host.write(u32(ptr), U64.pack(now & 0xFFFF_FFFF_FFFF_FFFF)) else EFAULT

    def _fd_close(self, caller: wasmtime.Caller, fd: int) -> int:
        host = self._host(caller)
        if not self._is_stdio(host, fd):
            return EBADF
        host.call.closed.add(u32(fd))
        return SUCCESS

    def _fd_fdstat_get(self, caller: wasmtime.Caller, fd: int, ptr: int) -> int:
        host = self._host(caller)
        if not self._is_stdio(host, fd):
            return EBADF
        rights = RIGHT_FD_READ if u32(fd) == 0 else RIGHT_FD_WRITE
        return SUCCESS if host.write(u32(ptr), FDSTAT.pack(FILETYPE_UNKNOWN, 0, rights, 0)) else EFAULT

    def _fd_seek(self, caller: wasmtime.Caller, fd: int, *_: int) -> int:
        host = self._host(caller)
        return ESPIPE if self._is_stdio(host, fd) else EBADF

    def _fd_read(self, caller: wasmtime.Caller, fd: int, iovs: int, count: int, nread_ptr: int) -> int:
        host = self._host(caller)
        if not self._is_stdio(host, fd) or u32(fd) != 0:
            return EBADF
        found = host.iovecs(u32(iovs), u32(count))
        if isinstance(found, int):
            return found
        return SUCCESS if host.write(u32(nread_ptr), U32.pack(0)) else EFAULT  # stdin is empty: end of file

    def _fd_write(self, caller: wasmtime.Caller, fd: int, iovs: int, count: int, written_ptr: int) -> int:
        host = self._host(caller)
        if not self._is_stdio(host, fd) or u32(fd) == 0:
            return EBADF
        found = host.iovecs(u32(iovs), u32(count))
        if isinstance(found, int):
            return found
        total = sum(length for _, length in found)
        if total > 0xFFFF_FFFF:
            return EINVAL  # nwritten is a u32
        host.charge(total * BYTE_FUEL)  # paid in full, copied only as far as the capture keeps
        stream = host.call.stdout if u32(fd) == 1 else host.call.stderr
        for ptr, length in found:
            room = max(0, stream.limit - stream.kept)
            if room:
                stream.write(ctypes.string_at(host.data + ptr, min(room, length)))
            stream.skip(length - min(room, length))
        return SUCCESS if host.write(u32(written_ptr), U32.pack(total)) else EFAULT

    def _random_get(self, caller: wasmtime.Caller, buf: int, length: int) -> int:
        if not self._call().capabilities.random:
            self._host(caller)
            return NOTCAPABLE
        length = u32(length)
        if length > RANDOM_MAX_BYTES:
            self._host(caller)
            return EINVAL
        host = self._host(caller, length * RANDOM_BYTE_FUEL)
        if not host.inside(u32(buf), length):
            return EFAULT
        host.write(u32(buf), os.urandom(length))
        return SUCCESS

    def _proc_exit(self, caller: wasmtime.Caller, code: int) -> None:
        self._host(caller)
        code = u32(code)
        raise ModuleTrap(f"module exited via proc_exit({code}) without answering", trap_code="exit", exit_code=code)

    def _poll_oneoff(self, caller: wasmtime.Caller, in_ptr: int, out_ptr: int, count: int, nevents_ptr: int) -> int:
        if not self._call().capabilities.clock:  # the way to sleep: a clock capability
            self._host(caller)
            return NOTCAPABLE
        count = u32(count)
        if count == 0 or count > MAX_SUBSCRIPTIONS:
            self._host(caller)
            return EINVAL
        host = self._host(caller, count * 100)
        raw = host.read(u32(in_ptr), count * SUBSCRIPTION.size)
        if raw is None or not host.inside(u32(out_ptr), count * EVENT.size):
            return EFAULT
        parsed = self._subscriptions(host, raw)
        if isinstance(parsed, int):
            return parsed
        ready, timers = parsed
        if not ready and timers:
            sleep = min(due for due, _ in timers)
            if sleep >= host.call.remaining_ns():
                raise DeadlineExceeded(
                    f"call ran past its deadline of {host.call.timeout_ms} ms "
                    f"(poll_oneoff asked to sleep {sleep / 1e6:.1f} ms)"
                )
            host.call.slept_ns += sleep  # no real sleep: the virtual clock moves, the deadline counts it
            timers = [(due - sleep, userdata) for due, userdata in timers]
        ready += [EVENT.pack(userdata, SUCCESS, EVENT_CLOCK, 0, 0) for due, userdata in timers if due <= 0]
        host.write(u32(out_ptr), b"".join(ready))
        return SUCCESS if host.write(u32(nevents_ptr), U32.pack(len(ready))) else EFAULT

    def _subscriptions(self, host: HostView, raw: bytes) -> tuple[list[bytes], list[tuple[int, int]]] | int:
        """(events ready now, clock timers as (due in ns from now, userdata)), or EINVAL for an unknown tag."""
        ready: list[bytes] = []
        timers: list[tuple[int, int]] = []
        for userdata, tag, clock_or_fd, timeout, _precision, flags in SUBSCRIPTION.iter_unpack(raw):
            if tag == EVENT_CLOCK:
                now = self._now(host, clock_or_fd)
                if now is None:
                    ready.append(EVENT.pack(userdata, EINVAL, EVENT_CLOCK, 0, 0))
                else:
                    timers.append((max(0, timeout - now if flags & SUBSCRIPTION_CLOCK_ABSTIME else timeout), userdata))
            elif tag in (EVENT_FD_READ, EVENT_FD_WRITE):
                fd = clock_or_fd
                if not self._is_stdio(host, fd) or (fd == 0) != (tag == EVENT_FD_READ):
                    ready.append(EVENT.pack(userdata, EBADF, tag, 0, 0))
                else:  # stdout/stderr take any amount; stdin is at end of file
                    ready.append(EVENT.pack(userdata, SUCCESS, tag, 0, EVENTRWFLAGS_HANGUP if fd == 0 else 0))
            else:
                return EINVAL
        return ready, timers
