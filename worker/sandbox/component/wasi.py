"""WASI 0.2 for components: which imports a component may have, and the WasiConfig every such store gets.

A component may import only `wasi:` interfaces of the packages in `WASI_PACKAGES` (cli, io, clocks, random,
filesystem, sockets); anything else (a host interface, `wasi:http`, a lookalike such as `wasix:cli`, a bare
function) is refused at load time with `ModuleRejected` naming it. Imports of `wasi:clocks/*` are refused
unless the publication grants `clock`, imports of `wasi:random/*` unless it grants `random`
(`spec.Capabilities`, as for core modules): the component's imports are static, so "not granted" is
decided once, before any call, and the component is never linked against what it may not use.

Such components are linked with wasmtime's own WASI 0.2 host (`Linker.add_wasip2`, on a Linker used for them
only), and every store that instantiates one is given a fresh `WasiConfig` first (wasmtime aborts the
process on a WASI call in a store without one). What that config grants:
- no arguments, no preopened directories (so no file can be opened), stdin closed (the builder's default);
- exactly the publication's `env`;
- no network: the host network is never inherited and name lookups are switched off explicitly (a probe,
  tests/corpora/hostile_components/network_probe.wasm, gets access-denied creating a TCP socket and
  permanent-resolver-failure looking up a name);
- stdout and stderr each into a bounded `CapturedStream` (worker/sandbox/wasi.py), at most the
  publication's `output_bytes` (and the worker's WASMQ_MAX_CAPTURED_OUTPUT); the rest is counted, dropped.

Unlike the core-module WASI host (worker/sandbox/wasi_host.py), wasmtime's WASI 0.2 host calls are native and
NOT bounded by the epoch deadline or charged fuel: the deadline interrupts only guest code, so a host call
that blocks (a clock subscription + `wasi:io/poll.poll`: a sleep) runs to its end. That is why clocks are
refused unless granted: without a clock there is no timer to wait on, and nothing else a component can reach
here blocks (stdin is closed, stdout/stderr are always ready, no socket can be made). A component
granted `clock` can sleep past its deadline: wasmtime-py 50 has no WasiConfig option to take the clocks out
of `add_wasip2` for one store, and trapping stubs shadowing them (the Linker allows shadowing) were not
pursued, since a stub would have to match every 0.2.x version a component imports. The backstop then is
Celery's hard time limit of the message (its calls' deadlines plus WASMQ_TIME_LIMIT_MARGIN_S, set by the
producer; WASMQ_TASK_TIME_LIMIT_S otherwise), which kills the pool process running the call; the soft limit
cannot interrupt a native host call. Bytes written to stdout cost the guest only the fuel of its own loop;
each write is at most 4096 bytes (wasmtime's limit per write).
"""

from __future__ import annotations

from collections.abc import Iterable

import wasmtime

from ...errors import ModuleRejected
from ...spec import Capabilities
from ..wasi import CapturedStream

WASI_PACKAGES = ("cli", "io", "clocks", "random", "filesystem", "sockets")
NEEDS_CAPABILITY = {"clocks": "clock", "random": "random"}  # package -> the capability that grants it

try:
    from wasmtime import _ffi as _native
except ImportError:  # pragma: no cover - a wasmtime-py without the module layout we know
    _native = None  # type: ignore[assignment]


def wasi_package(name: str) -> str | None:
    """The WASI package of an import name (`wasi:cli/stdout@0.2.0` -> `cli`), or None if not a WASI one."""
    namespace, colon, rest = name.partition(":")
    if namespace != "wasi" or not colon:
        return None
    package, slash, interface = rest.partition("/")
    if not slash or not interface or package not in WASI_PACKAGES:
        return None
    return package


def check_imports(imports: Iterable[str], *, ref: str, capabilities: Capabilities) -> bool:
    """Refuse any import that is not an allowed, granted WASI 0.2 interface; True if there is any import."""
    names = sorted(imports)
    refused = [name for name in names if wasi_package(name) is None]
    if refused:
        raise ModuleRejected(
            f"module {ref} imports {refused}; components may import only wasi: interfaces of {', '.join(WASI_PACKAGES)}"
        )
    for name in names:
        needed = NEEDS_CAPABILITY.get(wasi_package(name) or "")
        if needed is not None and not getattr(capabilities, needed):
            raise ModuleRejected(
                f"module {ref} imports {name}, which needs the capability {needed!r}; its publication does not grant it"
            )
    return bool(names)


class StoreOutput:
    """What one store's guest writes to stdout and stderr; `reset()` starts the capture of the next call."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.stdout = CapturedStream(limit)
        self.stderr = CapturedStream(limit)

    def reset(self) -> None:
        self.stdout = CapturedStream(self.limit)
        self.stderr = CapturedStream(self.limit)

    def _out(self, data: bytes) -> int:
        return self.stdout.write(data)

    def _err(self, data: bytes) -> int:
        return self.stderr.write(data)


def wasi_config(capabilities: Capabilities, output: StoreOutput) -> wasmtime.WasiConfig:
    """A WasiConfig granting nothing but `capabilities.env`, its output going into `output`."""
    config = wasmtime.WasiConfig()
    config.argv = []
    config.env = [list(pair) for pair in capabilities.env]
    config.stdout_custom = output._out
    config.stderr_custom = output._err
    if _native is not None and hasattr(_native, "wasi_config_allow_ip_name_lookup"):
        _native.wasi_config_allow_ip_name_lookup(config.ptr(), False)
    return config
