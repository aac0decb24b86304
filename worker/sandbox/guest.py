"""One instance as the ABI adapters see it: `call(name, *ints)` and a bounds-checked `mem`.

Two implementations with the same behaviour: `RawGuest` (worker/sandbox/capi.py, straight through the C API,
the default) and `PublicGuest` here, on wasmtime-py's public API, used when the fast path is unavailable
(another wasmtime-py build), when it is turned off (`Sandbox(fast=False)`), and by tests.
"""

from __future__ import annotations

from typing import Any, Protocol

import wasmtime

from .memory import GuestMemory


class Guest(Protocol):
    """What an ABI adapter needs from an instance."""

    mem: GuestMemory

    def call(self, name: str, *args: int) -> Any: ...


class PublicGuest:
    """A `Guest` over `wasmtime.Instance`; exports are wrapped once per instance, on first use."""

    __slots__ = ("_exports", "mem", "store")

    def __init__(self, store: wasmtime.Store, instance: wasmtime.Instance) -> None:
        self.store = store
        self._exports = instance.exports(store)
        memory = self._exports.get("memory")
        self.mem = GuestMemory(memory if isinstance(memory, wasmtime.Memory) else None, store)

    def call(self, name: str, *args: int) -> Any:
        func = self._exports.get(name)
        if not isinstance(func, wasmtime.Func):
            raise KeyError(f"module does not export a function {name!r}")
        return func(self.store, *args)


class PublicStore:
    """A `wasmtime.Store` with limits, fuel and an epoch deadline: the public-API twin of `capi.RawStore`."""

    __slots__ = ("store",)

    def __init__(
        self,
        engine: wasmtime.Engine,
        *,
        memory_bytes: int,
        table_elements: int,
        fuel: int,
        ticks: int,
        tables: int = -1,
        instances: int = -1,
    ) -> None:
        self.store = wasmtime.Store(engine)
        self.store.set_limits(
            memory_size=memory_bytes, memories=1, table_elements=table_elements, tables=tables, instances=instances
        )
        self.store.set_fuel(fuel)
        self.store.set_epoch_deadline(ticks)

    def set_wasi(self, config: wasmtime.WasiConfig) -> None:
        self.store.set_wasi(config)

    def fuel_left(self) -> int:
        try:
            return self.store.get_fuel()
        except wasmtime.WasmtimeError:
            return 0

    def instantiate(self, pre: wasmtime.InstancePre) -> PublicGuest:
        return PublicGuest(self.store, pre.instantiate(self.store))

    def close(self) -> None:
        self.store.close()
