"""Running Extism plugin calls: a fresh Store and instances per call, under fuel, an epoch deadline and caps.

Unlike Extism's own hosts, which keep one instance per plugin and reset its kernel between calls, every call
here gets a new store with a new kernel instance (kernel.wat) and a new plugin instance linked to it: nothing one
job leaves behind (vars, memory, a half-written output) can reach the next. The deadline covers instantiation
and `_initialize`. The memory cap bounds the plugin's linear memory and, separately, the kernel's (its blocks).

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
from typing import Any, NamedTuple

import wasmtime

from ...errors import InvalidInput, ModuleRejected, ModuleTrap, WasmqError
from ..capi import address
from ..engine import EpochTicker
from ..traps import classify
from ..validate import check_output_length, decode_output, encode_input
from ..wasi import CapturedStream
from ..wasi_host import BoundedWasi
from . import host, kernel, link, native
from .calls import Finish, NativeCall, PublicCall
from .plugin import ExtismPlugin
from .state import LOG_LEVELS, CallLimits, CallState, Slot

MAX_TABLE_ELEMENTS = 100_000
_KERNEL_TRAPS = frozenset({"bad_offset", "bad_handle", "http_denied", "kernel", "abort"})


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs about 0.5 µs more a call
class ExtismUsage:
    """What one call consumed, and the log lines it left (bounded)."""

    fuel: int
    wall_ms: float
    memory_bytes: int  # the plugin's linear memory at the end of the call
    block_bytes: int  # the kernel's memory at the end of the call (it only grows): its blocks and own page
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


class Prepared(NamedTuple):
    kernel: wasmtime.InstancePre
    kernel_address: int
    module_address: int
    kernel_bytes: int  # the memory of a fresh kernel instance (its module's least)


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
        self._engine_address = address(engine) if self.fast else 0
        self.linker = wasmtime.Linker(engine)  # the plugin's: WASI, env.abort, and per call the kernel instance
        self.linker.allow_shadowing = True  # each call defines its own kernel instance over the last one's
        self.wasi = BoundedWasi()  # WASI with nothing granted, every host call bounded (worker/sandbox/wasi_host.py)
        self.wasi.define(self.linker)
        self._kernel_linker = wasmtime.Linker(engine)
        self._slot = Slot()
        self._callbacks = link.define(self._kernel_linker, self.linker, self._slot, fast=self.fast)
        self._linker_address = address(self.linker) if self.fast else 0
        self._charge = native.charge_fuel if self.fast else host.charge_public
        self._limits = CallLimits(var_bytes=max_var_bytes, log_bytes=max_log_bytes, log_level=self.log_level)
        self._scratch = native.new_scratch() if self.fast else None
        self._prepared: weakref.WeakKeyDictionary[ExtismPlugin, Prepared] = weakref.WeakKeyDictionary()

    def prepared(self, plugin: ExtismPlugin) -> Prepared:
        """The plugin's kernel (exporting what it imports) resolved once against this runner's kernel linker, and
        the native addresses of that and of the plugin's module."""
        found = self._prepared.get(plugin)
        if found is None:
            module = kernel.kernel_module(self.engine, plugin.kernel_imports)
            pre = self._kernel_linker.instantiate_pre(module)
            fast = self.fast
            found = Prepared(pre, address(pre) if fast else 0, address(plugin.module) if fast else 0,
                             kernel.initial_bytes(module))  # fmt: skip
            self._prepared[plugin] = found
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
        limit = memory_bytes - kernel.RESERVED if max_input_bytes is None else max_input_bytes
        if isinstance(input, str):
            data = encode_input(input, max_bytes=limit)
        elif isinstance(input, bytes | bytearray):
            data = bytes(input)
            if len(data) > limit:
                raise InvalidInput(f"input is {len(data)} bytes, over the limit of {limit}")
        else:
            raise InvalidInput(f"input must be bytes or a string, not {type(input).__name__}")
        if len(data) + kernel.RESERVED > memory_bytes:
            raise InvalidInput(f"input of {len(data)} bytes does not fit the call's memory cap of {memory_bytes}")
        state = CallState(dict(config) if config else {}, self._limits, self._charge)
        # The slot first: it refuses a second call at once, before any store borrows the runner's scratch block.
        self._slot.enter(state)  # not a `with`: a generator context manager costs a few µs per call
        try:
            rc, usage, output, length = self._run(
                plugin, function, state, data,
                fuel=fuel, timeout_ms=timeout_ms, memory_bytes=memory_bytes, max_output_bytes=max_output_bytes,
            )  # fmt: skip
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
        try:
            check_output_length(length, max_bytes=max_output_bytes)
            return decode_output(output, max_bytes=max_output_bytes), usage
        except WasmqError as exc:
            exc.details.setdefault("usage", usage.to_dict())
            raise

    def _run(
        self, plugin: ExtismPlugin, function: str, state: CallState, data: bytes,
        *, fuel: int, timeout_ms: int, memory_bytes: int, max_output_bytes: int,
    ) -> tuple[int, ExtismUsage, bytes, int]:  # fmt: skip
        """Instantiate in a fresh store, call, and classify any failure; the return code, the usage, the output
        (empty when over `max_output_bytes`) and its length."""
        call: NativeCall | PublicCall
        ticks = self.ticker.deadline_ticks(timeout_ms)
        if self.fast:
            call = NativeCall(
                self._engine_address, memory_bytes=memory_bytes, table_elements=MAX_TABLE_ELEMENTS, fuel=fuel,
                ticks=ticks, scratch=self._scratch,  # one call at a time per runner (its Slot), so one scratch block
            )  # fmt: skip
        else:
            call = PublicCall(self.engine, memory_bytes=memory_bytes, table_elements=MAX_TABLE_ELEMENTS, fuel=fuel,
                              ticks=ticks)  # fmt: skip
        started = time.perf_counter()
        try:
            if plugin.needs_wasi:
                limit = self.max_captured_output
                self.wasi.begin(
                    timeout_ms=timeout_ms, fuel=fuel, stdout=CapturedStream(limit), stderr=CapturedStream(limit)
                )
            try:
                rc = self._instantiate_and_call(call, plugin, function, state, data, cap=memory_bytes)
            except Exception as exc:
                left = call.finish(max_output_bytes)
                state.error_text = left.error
                fault = left.record.fault_error(memory_bytes) if left.record is not None else None
                usage = self._usage(left, state, fuel, started)
                raise self._failure(
                    state.pending or fault or exc,
                    state,
                    left.linear_bytes,
                    usage,
                    cap=memory_bytes,
                    fuel=fuel,
                    timeout_ms=timeout_ms,
                ) from None
            left = call.finish(max_output_bytes)
            state.error_text = left.error
            length = left.record.output_length if left.record is not None else 0
            return rc, self._usage(left, state, fuel, started), left.output, length
        finally:
            if plugin.needs_wasi:
                self.wasi.end()
            state.memory = state.kernel = None
            call.close()

    def _instantiate_and_call(
        self, call: NativeCall | PublicCall, plugin: ExtismPlugin, function: str, state: CallState, data: bytes,
        *, cap: int,
    ) -> int:  # fmt: skip
        prepared = self.prepared(plugin)
        if isinstance(call, NativeCall):
            call.start(prepared.kernel_address, prepared.kernel_bytes, data,
                       log_level=self.log_level, has_config=bool(state.config), cap=cap)  # fmt: skip
            state.kernel = call.kernel
            call.instantiate(self._linker_address, prepared.module_address)
        else:
            call.start(prepared.kernel, prepared.kernel_bytes, data,
                       log_level=self.log_level, has_config=bool(state.config), cap=cap)  # fmt: skip
            state.kernel = call.kernel
            call.instantiate(self.linker, plugin.module)
        state.memory = call.memory
        if plugin.initializer is not None:
            call.run(plugin.initializer, False)
        return call.run(function, plugin.returns_rc[function])

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
    def _usage(left: Finish, state: CallState, fuel: int, started: float) -> ExtismUsage:
        return ExtismUsage(
            fuel=fuel - left.fuel_left,
            wall_ms=(time.perf_counter() - started) * 1000.0,
            memory_bytes=left.linear_bytes or 0,
            block_bytes=left.kernel_bytes,
            logs=state.log_dicts(),
        )
