"""Per-call cost of the Extism greeting: Extism's own Python SDK next to wasmq's kernel host.

    .venv/bin/python bench/extism_compare.py [--rounds 5] [--calls 2000] [--name Alice] [--json]

- extism: `extism.Plugin(...).call("greet", name)` on one plugin made once: Extism reuses its instance and
  resets its kernel between calls (vars and linear memory survive from call to call).
- wasmq: `ExtismRunner.call(plugin, "greet", name, ...)`: a fresh Store, kernel instance and plugin instance
  per call, fuel, epoch deadline, memory cap, checked UTF-8 output; the kernel is wasm (kernel.wat), the few
  host functions (config, logs) are raw C-API callbacks.
- wasmq-public: the same on wasmtime-py's public API only (its `define_func` trampolines), for scale;
  a tenth of the calls.

Before timing, the answers of both hosts are checked equal for a few names (non-ASCII, and the empty name,
which both refuse with the plugin's message).
- fresh-instance: what a new Store with a kernel instance and the plugin's instance linked to it costs alone
  (no call), the part of wasmq's time that reusing an instance would save.

The measurements are interleaved for `--rounds` rounds. Reported per call: the median wall time (every call
timed on its own) and the process CPU time (median over rounds); on a machine shared with other work the
second is the steadier. The target: wasmq within 2x of extism (CPU time).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import extism  # noqa: E402

from worker.errors import ModuleTrap  # noqa: E402
from worker.sandbox.engine import WASMTIME_VERSION, EpochTicker, make_engine  # noqa: E402
from worker.sandbox.extism import ExtismPlugin, ExtismRunner, load_plugin, native  # noqa: E402

PLUGIN = ROOT / "modules" / "greeting_extism" / "greeting_extism.wasm"
SAME = ["Alice", "Zoë", "José", "日本語", "🦀 crab", ""]  # checked equal to Extism's answers before timing
LIMITS = {"fuel": 10_000_000, "timeout_ms": 1_000, "memory_bytes": 64 * 1024 * 1024, "max_output_bytes": 1 << 20}


def same_answers(sdk: extism.Plugin, runners: list[ExtismRunner], plugin: ExtismPlugin, name: str) -> None:
    """Extism's answer and ours are the same text, or both an error with the plugin's message."""
    try:
        theirs = sdk.call("greet", name).decode("utf-8")
    except extism.Error as exc:
        theirs = f"plugin error: {exc}"
    for runner in runners:
        try:
            ours = runner.call(plugin, "greet", name, **LIMITS)[0]
        except ModuleTrap as exc:
            ours = str(exc)
        assert ours == theirs, (name, ours, theirs)


def call_times_us(run: Callable[[], object], calls: int) -> tuple[list[float], float]:
    """Each call's wall time on its own, and the process CPU time per call over all of them. On a shared
    machine the median wall time filters out calls during which the process was descheduled, and CPU time
    does not count them at all (it includes every thread: Extism's timer thread, our epoch ticker)."""
    clock = time.perf_counter
    times = []
    cpu_started = time.process_time()
    for _ in range(calls):
        started = clock()
        run()
        times.append(clock() - started)
    cpu = (time.process_time() - cpu_started) / calls
    return [t * 1e6 for t in times], cpu * 1e6


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--name", default="Alice")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    wasm = PLUGIN.read_bytes()
    engine = make_engine()
    ticker = EpochTicker(engine, tick_ms=5).start()
    try:
        plugin = load_plugin(engine, wasm, ref="greeting-extism", functions=["greet"])
        ours = ExtismRunner(engine, ticker)
        public = ExtismRunner(engine, ticker, fast=False)
        sdk = extism.Plugin(wasm, wasi=False)
        for name in (args.name, *SAME):
            same_answers(sdk, [ours, public], plugin, name)
        prepared = ours.prepared(plugin)

        def fresh_instance() -> None:
            store = native.NativeStore(ours._engine_address, memory_bytes=64 << 20, table_elements=100_000,
                                       fuel=10_000_000, ticks=1000, memories=2)  # fmt: skip
            try:
                store.instantiate(prepared.kernel_address, native.KERNEL)
                store.link(ours._linker_address, b"extism:host/env", native.KERNEL, prepared.module_address,
                           native.PLUGIN)  # fmt: skip
            finally:
                store.close()

        runs: dict[str, tuple[Callable[[], object], int]] = {
            "extism": (lambda: sdk.call("greet", args.name), args.calls),
            "wasmq": (lambda: ours.call(plugin, "greet", args.name, **LIMITS), args.calls),
            "wasmq-public": (lambda: public.call(plugin, "greet", args.name, **LIMITS), max(1, args.calls // 10)),
            "fresh-instance": (fresh_instance, args.calls),
        }
        samples: dict[str, list[float]] = {name: [] for name in runs}
        cpu_samples: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, (run, calls) in runs.items():
                wall, cpu = call_times_us(run, calls)
                samples[name] += wall
                cpu_samples[name].append(cpu)
    finally:
        ticker.stop()

    medians = {name: statistics.median(values) for name, values in samples.items()}
    cpu = {name: statistics.median(values) for name, values in cpu_samples.items()}
    result: dict[str, object] = {
        "per_call_us": {name: round(value, 1) for name, value in medians.items()},
        "cpu_per_call_us": {name: round(value, 1) for name, value in cpu.items()},
        "ratio_wasmq_to_extism": round(cpu["wasmq"] / cpu["extism"], 2),
        "wall_ratio_wasmq_to_extism": round(medians["wasmq"] / medians["extism"], 2),
        "versions": {
            "extism": version("extism"),
            "extism-sys": version("extism-sys"),
            "wasmtime-py": WASMTIME_VERSION,
            "python": platform.python_version(),
        },
        "rounds": args.rounds,
        "calls": args.calls,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"Extism greeting, per call, {args.rounds} rounds of {args.calls} calls:  median wall   CPU time")
        for name, value in medians.items():
            print(f"  {name:<15} {value:25.1f} us {cpu[name]:8.1f} us")
        wall, cpu_ratio = result["wall_ratio_wasmq_to_extism"], result["ratio_wasmq_to_extism"]
        print(f"  wasmq / extism  {wall:25.2f} x  {cpu_ratio:8.2f} x   (target: within 2x)")
    return result


if __name__ == "__main__":
    main()
