"""Running Extism plugin calls: a fresh Store and instance per call, under fuel, an epoch deadline and caps.

Unlike Extism's own hosts, which keep one instance per plugin and reset its kernel between calls, every call
here gets a new instance and a new block store: nothing one job leaves behind (vars, memory, a half-written
output) can reach the next. The deadline covers instantiation and `_initialize`. The memory cap bounds the
plugin's linear memory and, separately, the host-side blocks it allocates through the kernel.

Outcome of a call, in Extism's order: a trap or a kernel refusal fails it (the plugin's `error_set` message, if
there is one, replaces a plain trap's text); then an error set with `error_set` fails it even with return code
0 (`ModuleTrap`, trap code `plugin_error`, the plugin's message); then a non-zero return code fails it (same
trap code); otherwise the block `output_set` pointed at is the answer, checked for size and UTF-8.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import wasmtime

from ...errors import InvalidInput, ModuleRejected, ModuleTrap, WasmqError
from ..engine import EpochTicker
from ..memory import GuestMemory
from ..traps import classify
from ..validate import check_output_length, decode_output, encode_input
from ..wasi import CapturedStream
from ..wasi_host import BoundedWasi
from . import kernel, link, native
from .blocks import BLOCK_OVERHEAD
from .plugin import ExtismPlugin
from .state import LOG_LEVELS, CallLimits, CallState, Slot

MAX_TABLE_ELEMENTS = 100_000
_KERNEL_TRAPS = frozenset({"bad_offset", "bad_handle", "http_denied", "kernel", "abort"})


@dataclass(frozen=True)
class ExtismUsage:
    """What one call consumed, and the log lines it left (bounded)."""

    fuel: int
    wall_ms: float
    memory_bytes: int  # the plugin's linear memory at the end of the call
    block_bytes: int  # the most the host-side blocks held at once (data + per-block overhead)
    logs: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "fuel": self.fuel,
            "wall_ms": round(self.wall_ms, 3),
            "memory_bytes": self.memory_bytes,
            "block_bytes": self.block_bytes,
        }
        if self.logs:
            out["logs"] = self.logs
        return out


class ExtismRunner:
    """Calls Extism plugin functions on a shared Engine and epoch ticker; one linker serves every call."""

    def __init__(
        self,
        engine: wasmtime.Engine,
        ticker: EpochTicker,
        *,
        log_level: str = "info",
        max_var_bytes: int = 1024 * 1024,
        max_log_bytes: int = 64 * 1024,
        max_captured_output: int = 64 * 1024,
        fast: bool = True,
    ) -> None:
        self.engine = engine
        self.ticker = ticker
        self.log_level = LOG_LEVELS.index(log_level)
        self.max_var_bytes = max_var_bytes
        self.max_log_bytes = max_log_bytes
        self.max_captured_output = max_captured_output
        # The C-API path (native.py) unless this wasmtime-py build does not match it.
        self.fast = fast and native.AVAILABLE
        self._engine_address = native.address(engine) if self.fast else 0
        self.linker = wasmtime.Linker(engine)
        self.wasi = BoundedWasi()  # WASI with nothing granted, every host call bounded (worker/sandbox/wasi_host.py)
        self.wasi.define(self.linker)
        self._slot = Slot()
        self._callbacks = link.define(self.linker, self._slot, fast=self.fast)
        self._charge = native.charge_fuel if self.fast else kernel.charge_public
        self._limits: dict[int, CallLimits] = {}
        self._scratch = native.new_scratch() if self.fast else None
        self._pre: weakref.WeakKeyDictionary[ExtismPlugin, tuple[wasmtime.InstancePre, int]] = (
            weakref.WeakKeyDictionary()
        )

    def _instance_pre(self, plugin: ExtismPlugin) -> tuple[wasmtime.InstancePre, int]:
        """The plugin's imports resolved once against this runner's linker (and the native address of that)."""
        found = self._pre.get(plugin)
        if found is None:
            pre = self.linker.instantiate_pre(plugin.module)
            found = self._pre[plugin] = (pre, native.address(pre) if self.fast else 0)
        return found

    def call(
        self,
        plugin: ExtismPlugin,
        function: str,
        input: bytes | str,
        *,
        fuel: int,
        timeout_ms: int,
        memory_bytes: int,
        max_output_bytes: int,
        config: Mapping[str, str] | None = None,
        max_input_bytes: int | None = None,
    ) -> tuple[str, ExtismUsage]:
        """Run `function` with `input` (`max_input_bytes` defaults to what fits the memory cap); the checked answer
        and its usage, or a `WasmqError`."""
        if function not in plugin.returns_rc:
            raise ModuleRejected(f"module {plugin.ref}: function {function!r} was not checked at load time")
        limit = memory_bytes - BLOCK_OVERHEAD if max_input_bytes is None else max_input_bytes
        if isinstance(input, str):
            data = encode_input(input, max_bytes=limit)
        elif isinstance(input, bytes | bytearray):
            data = bytes(input)
            if len(data) > limit:
                raise InvalidInput(f"input is {len(data)} bytes, over the limit of {limit}")
        else:
            raise InvalidInput(f"input must be bytes or a string, not {type(input).__name__}")
        if len(data) + BLOCK_OVERHEAD > memory_bytes:
            raise InvalidInput(f"input of {len(data)} bytes does not fit the call's memory cap of {memory_bytes}")
        limits = self._limits.get(memory_bytes)
        if limits is None:
            limits = CallLimits(memory_bytes, self.max_var_bytes, self.max_log_bytes, log_level=self.log_level)
            if len(self._limits) < 64:  # a handful of caps in practice; never an unbounded cache
                self._limits[memory_bytes] = limits
        state = CallState(data, dict(config or {}), limits, self._charge)
        # The slot first: it refuses a second call at once, before any store borrows the runner's scratch block.
        self._slot.enter(state)  # not a `with`: a generator context manager costs a few µs per call
        try:
            rc, usage = self._run(plugin, function, state, fuel=fuel, timeout_ms=timeout_ms, memory_bytes=memory_bytes)
        finally:
            self._slot.leave()
        message = state.error_message()
        if message is not None:
            raise ModuleTrap(f"plugin error: {message}", trap_code="plugin_error", usage=usage.to_dict())
        if rc != 0:
            raise ModuleTrap(
                f"plugin returned the non-zero code {rc} without an error message",
                trap_code="plugin_error",
                rc=rc,
                usage=usage.to_dict(),
            )
        _, length = state.output
        try:
            check_output_length(length, max_bytes=max_output_bytes)
            return decode_output(state.output_bytes(), max_bytes=max_output_bytes), usage
        except WasmqError as exc:
            exc.details.setdefault("usage", usage.to_dict())
            raise

    def _run(
        self, plugin: ExtismPlugin, function: str, state: CallState, *, fuel: int, timeout_ms: int, memory_bytes: int
    ) -> tuple[int, ExtismUsage]:
        """Instantiate in a fresh store, call, and classify any failure; the return code and the usage."""
        store: native.NativeStore | _PublicCall
        ticks = self.ticker.deadline_ticks(timeout_ms)
        if self.fast:
            store = native.NativeStore(
                self._engine_address,
                memory_bytes=memory_bytes,
                table_elements=MAX_TABLE_ELEMENTS,
                fuel=fuel,
                ticks=ticks,
                scratch=self._scratch,  # one call at a time per runner (its Slot), so one scratch block
            )
        else:
            store = _PublicCall(self.engine, memory_bytes=memory_bytes, fuel=fuel, ticks=ticks)
        started = time.perf_counter()
        try:
            if plugin.needs_wasi:
                limit = self.max_captured_output
                self.wasi.begin(
                    timeout_ms=timeout_ms, fuel=fuel, stdout=CapturedStream(limit), stderr=CapturedStream(limit)
                )
            try:
                rc = self._instantiate_and_call(store, plugin, function, state)
            except Exception as exc:
                linear = state.memory.size if state.memory is not None else None
                usage = self._usage(store.fuel_left(), state, fuel, started, linear or 0)
                raise self._failure(
                    state.pending or exc, state, linear, usage, cap=memory_bytes, fuel=fuel, timeout_ms=timeout_ms
                ) from None
            linear = state.memory.size if state.memory is not None else 0
            return rc, self._usage(store.fuel_left(), state, fuel, started, linear)
        finally:
            if plugin.needs_wasi:
                self.wasi.end()
            state.memory = None
            store.close()

    def _instantiate_and_call(
        self, store: native.NativeStore | _PublicCall, plugin: ExtismPlugin, function: str, state: CallState
    ) -> int:
        if isinstance(store, native.NativeStore):
            store.instantiate(self._instance_pre(plugin)[1])
            state.memory = store.memory()
            if plugin.initializer is not None:
                store.call(store.func(plugin.initializer), False)
            return store.call(store.func(function), plugin.returns_rc[function])
        store.instantiate(self._instance_pre(plugin)[0])
        state.memory = store.memory()
        if plugin.initializer is not None:
            store.call(plugin.initializer)
        result = store.call(function)
        return int(result) if plugin.returns_rc[function] else 0

    @staticmethod
    def _failure(
        exc: BaseException,
        state: CallState,
        linear: int | None,
        usage: ExtismUsage,
        *,
        cap: int,
        fuel: int,
        timeout_ms: int,
    ) -> BaseException:
        """The typed error for a failed call (the plugin's own message in place of a plain trap's), or `exc`."""
        error = classify(exc, memory_bytes=linear, memory_cap=cap, fuel=fuel, timeout_ms=timeout_ms)
        if error is None:
            return exc  # not the module's doing: a host bug, re-raised as it is
        message = state.error_message()
        if type(error) is ModuleTrap and message is not None and error.details.get("trap_code") not in _KERNEL_TRAPS:
            error = ModuleTrap(
                f"plugin error: {message}", trap_code="plugin_error", wasm_trap=error.details.get("trap_code")
            )
        error.details.setdefault("usage", usage.to_dict())
        return error

    @staticmethod
    def _usage(left: int, state: CallState, fuel: int, started: float, linear: int) -> ExtismUsage:
        return ExtismUsage(
            fuel=fuel - left,
            wall_ms=(time.perf_counter() - started) * 1000.0,
            memory_bytes=linear,
            block_bytes=state.blocks.peak,
            logs=state.log_dicts(),
        )


class _PublicCall:
    """One call's store and instance on wasmtime-py's public API: the twin of `native.NativeStore`."""

    __slots__ = ("exports", "store")

    def __init__(self, engine: wasmtime.Engine, *, memory_bytes: int, fuel: int, ticks: int) -> None:
        self.store = wasmtime.Store(engine)
        self.store.set_limits(memory_size=memory_bytes, memories=1, table_elements=MAX_TABLE_ELEMENTS)
        self.store.set_fuel(fuel)
        self.store.set_epoch_deadline(ticks)
        self.exports: Mapping[str, Any] | None = None

    def set_wasi(self, config: wasmtime.WasiConfig) -> None:
        self.store.set_wasi(config)

    def instantiate(self, pre: wasmtime.InstancePre) -> None:
        self.exports = pre.instantiate(self.store).exports(self.store)

    def memory(self) -> GuestMemory:
        found = self.exports.get("memory") if self.exports is not None else None
        return GuestMemory(found if isinstance(found, wasmtime.Memory) else None, self.store)

    def call(self, name: str) -> Any:
        found = self.exports.get(name) if self.exports is not None else None
        if not isinstance(found, wasmtime.Func):  # check_plugin saw it; a mismatch would be a host bug
            raise ModuleTrap(f"plugin has no function {name!r}", trap_code="kernel")
        return found(self.store)

    def fuel_left(self) -> int:
        try:
            return self.store.get_fuel()
        except wasmtime.WasmtimeError:
            return 0

    def close(self) -> None:
        self.store.close()
