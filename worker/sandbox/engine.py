"""One wasmtime Engine per process, with fuel and epoch interruption, and the ticker that drives epochs.

Build it after fork (Celery's `worker_process_init`): an Engine and its threads do not survive `fork()`.
Nothing increments the epoch unless the ticker runs, so a deadline without it would never fire.
"""

from __future__ import annotations

import threading
import time
import weakref
from importlib.metadata import version

import wasmtime

from . import pool

WASMTIME_VERSION = version("wasmtime")


# Linear memory set-up, tuned for many short-lived instances (a fresh Store and instance per job): memories come
# from the pooling allocator (worker/sandbox/pool.py), one slot per memory reserved once per Engine and reused,
# so creating and dropping an instance maps nothing and faults in little. wasmtime requires the reservation to
# cover a slot, and a slot covers the largest wasm32 memory (4 GiB), so no memory ever moves and no cap is
# above a slot. The reservation is baked into compiled code (part of the cache key): accesses at offsets under
# the 64 KiB guard need no explicit bounds check. An engine without the pool (no address space for it) keeps
# the same reservation, so artifacts are the same either way.
MEMORY_RESERVATION = pool.MEMORY_SLOT_BYTES
MEMORY_GUARD = 64 * 1024
# Data segments are mapped copy-on-write from a memory image built at compile time. Copying them at each
# instantiation instead (False) was a little cheaper per call for small modules, but made segments a weapon:
# measured on this project's 2-core machine (tests/corpora/generate_hostile.py `data_segments_100000`,
# 100,000 one-byte segments, 780 KB of wasm):
#   memory_init_cow=False: compile 107 s, 2.8 GB peak RSS, 16 MB artifact, 6.4 ms per instantiation
#   memory_init_cow=True:  compile 0.06 s,  36 MB peak RSS, 0.7 MB artifact, 0.75 ms per instantiation
# and for the greeting module (interleaved Sandbox.call, median of 20 x 500 calls): 97-104 us with False,
# 115-133 us with True. About 20 us per call is the price of never spending minutes on a module's data.
MEMORY_INIT_COW = True
# Cranelift's opt level changes neither problem: 80,000 nested loops compile in 18 s at "none", 20 s at
# "speed", 19 s at "speed_and_size" (fuel and epoch checks at every loop header make compile time superlinear
# in nesting depth, whatever the level; the bounded compiler, worker/sandbox/compiler.py, is the answer to
# that), and the greeting call is as fast at "none" as at "speed" (131 vs 133 us). "speed" is kept: real
# modules with loops run faster.
CRANELIFT_OPT_LEVEL = "speed"
# The version of the memory meter added to every component before it is compiled (component/meter.py): an
# artifact compiled with another (or none) must not be loaded.
COMPONENT_METER = 1

# The WebAssembly proposals, on or off. On: only what the ABIs and real toolchains (Rust, zig/clang,
# AssemblyScript, componentize-py, jco) emit by default. mvp, mutable globals, sign-extension ops, saturating
# float-to-int, extended constants and multi-value are always on in wasmtime 50 (no switch; multi-value too is
# set explicitly below). Every switch is listed so that a wasmtime upgrade that turns a new default on does not
# widen what we accept unnoticed, and every one is part of the precompiled cache key (engine_fingerprint).
FEATURES: dict[str, bool] = {
    # on
    "wasm_bulk_memory": True,  # memory.copy/fill: greeting-c, every hostile WAT module, the greeting component
    "wasm_multi_value": True,  # emitted by Rust >= 1.82 (LLVM multivalue default) and by the canonical ABI tools
    "wasm_reference_types": True,  # LLVM >= 19 encodes call_indirect with it; the component model needs it
    "wasm_simd": True,  # 128-bit SIMD is deterministic (except NaN bit patterns, as scalar floats); Rust/zig opt-in
    "wasm_component_model": True,  # the component ABI
    # off: none of the ABIs needs them, each widens the attack surface or breaks determinism
    "wasm_threads": False,  # shared memory + atomics: a shared memory cannot be capped per call like ours
    "shared_memory": False,  # (the host side of threads)
    "wasm_gc": False,  # a second, GC-managed heap the memory cap does not cover
    "wasm_function_references": False,  # typed function references: only used with gc / stack switching
    "wasm_memory64": False,  # the host checks 32-bit pointers; 64-bit memories/tables would need other checks
    "wasm_multi_memory": False,  # the ABIs read one exported memory; more memories escape the memory cap per call
    "wasm_exceptions": False,  # unwinding through the host is a new path nobody needs for a string in/out call
    "wasm_relaxed_simd": False,  # results differ between CPUs: a retried job could answer differently
    "wasm_wide_arithmetic": False,  # 128-bit add/mul: not emitted by default by any toolchain we accept
    "wasm_tail_call": False,  # not emitted by default; new control-flow paths in the compiler
    "wasm_stack_switching": False,  # continuations: experimental
    "wasm_custom_page_sizes": False,  # the memory cap and traps.py reason in 64 KiB pages
    "gc_support": False,  # no GC heap at all (the GC proposal is off; funcref tables do not need it)
}

# How wasmtime's validator words a disabled proposal (a fragment of the message, lower case) -> the name a
# `ModuleRejected` gives it. Checked against every case of tests/corpora/hostile_compile.
FEATURE_MESSAGES: tuple[tuple[str, str], ...] = (
    ("shared memor", "threads (shared memory)"),
    ("threads", "threads (atomics)"),
    ("gc feature", "gc (garbage-collected types)"),
    ("gc proposal", "gc (garbage-collected types)"),
    ("function references", "function references"),
    ("memory64", "memory64 (64-bit memories or tables)"),
    ("multiple memories", "multi-memory"),
    ("multi-memory", "multi-memory"),
    ("exceptions", "exceptions"),
    ("relaxed simd", "relaxed SIMD"),
    ("tail call", "tail calls"),
    ("wide arithmetic", "wide arithmetic"),
    ("custom page sizes", "custom page sizes"),
    ("stack switching", "stack switching"),
    ("simd support is not enabled", "SIMD"),
    ("bulk memory", "bulk memory"),
    ("reference types", "reference types"),
)


def explain_invalid(message: str) -> tuple[str | None, str]:
    """(the disabled proposal `message` is about or None, a one-line cause) for a wasmtime validation error."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    cause = lines[-1] if lines else "no message"
    cause = cause.split(": ", 1)[1] if cause[:1].isdigit() and ": " in cause else cause  # "1: Invalid input ..."
    text = cause.lower()  # not the whole message: it can quote the module's own function names
    for fragment, feature in FEATURE_MESSAGES:
        if fragment in text:
            return feature, f"it uses {feature}, a WebAssembly proposal this sandbox does not enable ({cause})"
    return None, cause[:400]


def engine_fingerprint(*, parallel_compilation: bool = False) -> str:
    """What a precompiled artifact depends on besides the module bytes: the runtime and every engine setting."""
    features = ",".join(f"{name.removeprefix('wasm_')}={int(on)}" for name, on in sorted(FEATURES.items()))
    return (
        f"wasmtime-{WASMTIME_VERSION};fuel;epoch;par={int(parallel_compilation)};"
        f"res={MEMORY_RESERVATION};guard={MEMORY_GUARD};cow={int(MEMORY_INIT_COW)};"
        f"opt={CRANELIFT_OPT_LEVEL};meter={COMPONENT_METER};features={features}"
    )


def make_engine(*, parallel_compilation: bool = False, pooling: bool | None = None) -> wasmtime.Engine:
    """An Engine that meters fuel and checks epoch deadlines; every Store made from it must set both.

    `pooling`: use the pooling allocator (None: when this process can reserve it, `pool.unavailable`). An
    engine that only compiles (the bounded compiler's child, under an address-space limit) passes False."""
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    # Off by default: compiling on a thread pool in a process that later forks can hang the child.
    config.parallel_compilation = parallel_compilation
    config.memory_reservation = MEMORY_RESERVATION
    config.memory_guard_size = MEMORY_GUARD
    config.memory_init_cow = MEMORY_INIT_COW
    config.cranelift_opt_level = CRANELIFT_OPT_LEVEL
    for name, on in FEATURES.items():
        setattr(config, name, on)
    if pooling is None:
        pooling = pool.unavailable(MEMORY_GUARD) is None
    if pooling:
        pool.apply(config)
    engine = wasmtime.Engine(config)
    if pooling:
        POOLED.add(engine)
    return engine


POOLED: weakref.WeakSet[wasmtime.Engine] = weakref.WeakSet()  # the engines made with the pooling allocator


def pooled(engine: wasmtime.Engine) -> bool:
    """Whether `engine` allocates its instances from the pool."""
    return engine in POOLED


class EpochTicker:
    """A daemon thread that increments the engine's epoch every `tick_ms` milliseconds.

    A call's deadline is expressed in ticks: `deadline_ticks(timeout_ms)` rounds up, plus one tick so that
    a call never gets less than its timeout.
    """

    def __init__(self, engine: wasmtime.Engine, *, tick_ms: int) -> None:
        self.engine = engine
        self.tick_ms = tick_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def deadline_ticks(self, timeout_ms: int) -> int:
        return -(-timeout_ms // self.tick_ms) + 1

    def start(self) -> EpochTicker:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="wasmq-epoch-ticker", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        # Count ticks against the monotonic clock: if the thread was held up (GIL, scheduler), it catches up,
        # so the epoch measures wall time rather than how often this thread got to run.
        interval = self.tick_ms / 1000.0
        started = time.monotonic()
        done = 0
        while not self._stop.wait(max(0.0, started + (done + 1) * interval - time.monotonic())):
            due = int((time.monotonic() - started) / interval)
            while done < due:
                self.engine.increment_epoch()
                done += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
