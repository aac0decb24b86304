"""Every WASI host call is bounded by the call's deadline and paid for in fuel (worker/sandbox/wasi_host.py).

Each module of tests/corpora/hostile_wasi does one hostile host call; each gets its typed error or an errno
answer ("errno=NN") promptly, and the same corpus_sandbox serves a greeting right after. Times are asserted only as
"well under the 10 s the module asked for", never tightly: the machine is shared.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Any

import pytest
import wasmtime

from tests.sandbox.conftest import EVERYTHING, WASI_DIR, greets, wasi_name
from worker.errors import DeadlineExceeded, FuelExhausted, ModuleTrap, WasmqError
from worker.sandbox import Sandbox, wasi_host
from worker.sandbox.engine import make_engine
from worker.sandbox.wasi import CapturedStream
from worker.sandbox.wasi_host import BoundedWasi

WELL_UNDER_10_S = 5.0


@dataclass(frozen=True)
class Case:
    stem: str
    outcome: type[WasmqError] | str  # the error, or the exact answer
    limits: dict[str, Any] | None = None
    message: str = ""

    def __str__(self) -> str:
        return self.stem + (f"{self.limits}" if self.limits else "")


CASES = [
    # a 10 s sleep under a 100 ms (and the default 1 s) deadline: refused at once, not after the sleep
    Case("poll_sleep_10s", DeadlineExceeded, {"timeout_ms": 100}, message="poll_oneoff asked to sleep 10000.0 ms"),
    Case("poll_sleep_10s", DeadlineExceeded, message="poll_oneoff"),
    Case("poll_sleep_1ms", "errno=00"),  # fits: returns at once with the clock event
    # 1 ms at a time: the slept time adds up against the deadline (100 sleeps, long before the fuel runs out)
    Case("poll_sleep_loop", DeadlineExceeded, {"timeout_ms": 100}),
    Case("fd_write_1gib", "errno=21"),  # EFAULT: the iovec reaches past the memory
    Case("fd_write_many_iovecs", "errno=00"),  # 62.5 MiB claimed: paid in fuel, 64 KiB kept
    Case("fd_write_many_iovecs", FuelExhausted, {"fuel": 10_000_000}),  # ... which this budget cannot pay
    Case("fd_write_too_many_iovecs", "errno=28"),  # EINVAL: more than IOV_MAX
    Case("fd_write_loop", FuelExhausted),
    Case("random_get_1gib", "errno=28"),  # EINVAL: over the per-call cap
    Case("random_get_16", "errno=00"),
    Case("random_get_loop", FuelExhausted),
    Case("clock_spin", FuelExhausted),  # the virtual clock moves with fuel: 10 s of it costs 10**10 fuel
    Case("clock_read", "errno=00"),
    Case("fd_read_stdin", "errno=00"),  # stdin is empty: end of file
    Case("path_open", "errno=08"),  # EBADF: there are no preopened directories
    Case("sock_accept", "errno=08"),
    Case("sched_yield_loop", FuelExhausted),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hostile_host_call_is_bounded_then_the_sandbox_still_works(corpus_sandbox: Sandbox, case: Case) -> None:
    started = time.monotonic()
    if isinstance(case.outcome, str):
        assert corpus_sandbox.call(wasi_name(case.stem), "greet", "Mallory", case.limits).output == case.outcome
    else:
        with pytest.raises(case.outcome) as info:
            corpus_sandbox.call(wasi_name(case.stem), "greet", "Mallory", case.limits)
        assert case.message in info.value.message
        assert "usage" in info.value.details
    assert time.monotonic() - started < WELL_UNDER_10_S
    greets(corpus_sandbox)


def test_proc_exit_is_a_trap_with_its_code(corpus_sandbox: Sandbox) -> None:
    with pytest.raises(ModuleTrap) as info:
        corpus_sandbox.call(wasi_name("proc_exit"), "greet", "Mallory")
    assert info.value.details["trap_code"] == "exit"
    assert info.value.details["exit_code"] == 7
    greets(corpus_sandbox)


def test_a_host_function_error_does_not_leak_into_later_calls(corpus_sandbox: Sandbox) -> None:
    """wasmtime-py parks a host function's exception in a global until the caller picks it up; the fast path
    must pick it up too, or the next unrelated failure anywhere in the process would raise it."""
    from wasmtime import _func

    with pytest.raises(ModuleTrap):
        corpus_sandbox.call(wasi_name("proc_exit"), "greet", "Mallory")
    assert _func.LAST_EXCEPTION is None
    store = wasmtime.Store()
    func = wasmtime.Instance(store, wasmtime.Module(store.engine, '(module (func (export "f") unreachable))'), [])
    trap = func.exports(store)["f"]
    assert isinstance(trap, wasmtime.Func)
    with pytest.raises(wasmtime.Trap, match="unreachable"):  # an unrelated trap is itself, not the old exit
        trap(store)


def test_chatty_writes_are_captured_up_to_the_limit(corpus_sandbox: Sandbox) -> None:
    result = corpus_sandbox.call(wasi_name("fd_write_many_iovecs"), "greet", "Mallory")
    dropped = 1000 * 65536 - corpus_sandbox.settings.max_captured_output
    assert result.output == "errno=00"
    assert result.stdout.endswith(f"\n[... {dropped} more bytes dropped]")
    assert result.usage.fuel >= 1000 * 65536  # every claimed byte was paid for


# -- the host functions seen from a guest, through the public API -------------------------------------


def _run_direct(stem: str, *, fuel: int = 10**8, timeout_ms: int = 1000) -> tuple[wasmtime.Store, Any, int]:
    """Instantiate a corpus module on a Linker with `BoundedWasi` and call greet(0, 0) inside a call frame;
    returns the store, the instance's exports and the packed answer."""
    engine = make_engine()
    linker = wasmtime.Linker(engine)
    wasi = BoundedWasi()
    wasi.define(linker)
    store = wasmtime.Store(engine)
    store.set_fuel(fuel)
    store.set_epoch_deadline(10**9)
    module = wasmtime.Module(engine, (WASI_DIR / f"{stem}.wasm").read_bytes())
    wasi.begin(
        timeout_ms=timeout_ms, fuel=fuel, stdout=CapturedStream(1024), stderr=CapturedStream(1024),
        capabilities=EVERYTHING,
    )  # fmt: skip
    try:
        exports = linker.instantiate(store, module).exports(store)
        greet = exports["greet"]
        assert isinstance(greet, wasmtime.Func)
        return store, exports, greet(store, 0, 0)
    finally:
        wasi.end()


def test_clocks_are_virtual_and_coarse() -> None:
    before = int(time.time())
    store, exports, _ = _run_direct("clock_read")
    memory = exports["memory"]
    assert isinstance(memory, wasmtime.Memory)
    realtime, monotonic, res_real, res_mono = struct.unpack("<QQQQ", bytes(memory.read(store, 1024, 1056)))
    assert (res_real, res_mono) == (wasi_host.CLOCK_RESOLUTION_NS, wasi_host.CLOCK_RESOLUTION_NS)
    # monotonic: the fuel used so far (a few host calls), in nanoseconds; not the machine's uptime
    assert 0 < monotonic < 10**6
    # realtime: the call's start, truncated to the second, plus the same virtual time
    assert before * 10**9 <= realtime <= (int(time.time()) + 1) * 10**9
    assert 0 < realtime % 10**9 < monotonic  # read first, one host call earlier


def test_a_sleep_advances_the_virtual_clock_without_sleeping() -> None:
    started = time.monotonic()
    store, exports, _ = _run_direct("poll_sleep_1ms")
    memory = exports["memory"]
    assert isinstance(memory, wasmtime.Memory)
    nevents = struct.unpack("<I", bytes(memory.read(store, 1200, 1204)))[0]
    _userdata, error, kind = struct.unpack("<QHB", bytes(memory.read(store, 1100, 1111)))
    assert (nevents, error, kind) == (1, 0, wasi_host.EVENT_CLOCK)
    assert time.monotonic() - started < WELL_UNDER_10_S


def test_random_bytes_are_random() -> None:
    fills = []
    for _ in range(2):
        store, exports, _ = _run_direct("random_get_16")
        memory = exports["memory"]
        assert isinstance(memory, wasmtime.Memory)
        fills.append(bytes(memory.read(store, 1024, 1040)))
    assert fills[0] != fills[1]


def test_a_host_call_outside_a_sandboxed_call_is_refused() -> None:
    engine = make_engine()
    linker = wasmtime.Linker(engine)
    BoundedWasi().define(linker)
    store = wasmtime.Store(engine)
    store.set_fuel(10**8)
    store.set_epoch_deadline(10**9)
    module = wasmtime.Module(engine, (WASI_DIR / "random_get_16.wasm").read_bytes())
    greet = linker.instantiate(store, module).exports(store)["greet"]
    assert isinstance(greet, wasmtime.Func)
    with pytest.raises(ModuleTrap, match="outside"):
        greet(store, 0, 0)


def test_every_preview1_function_is_defined_with_wasmtimes_signature() -> None:
    """A module importing all 46 functions links against ours exactly as against wasmtime's own WASI."""
    kinds = {"i": "i32", "I": "i64"}
    imports = []
    for name, (params, _) in BoundedWasi()._functions().items():
        result = "" if name == "proc_exit" else "(result i32)"
        imports.append(
            f'(import "wasi_snapshot_preview1" "{name}" (func (param {" ".join(kinds[p] for p in params)}) {result}))'
        )
    engine = make_engine()
    module = wasmtime.Module(engine, "(module " + " ".join(imports) + ")")
    assert len(imports) == 46
    theirs = wasmtime.Linker(engine)
    theirs.define_wasi()
    theirs.instantiate_pre(module)
    ours = wasmtime.Linker(engine)
    BoundedWasi().define(ours)
    ours.instantiate_pre(module)
