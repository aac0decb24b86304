"""Micro-benchmark: one greeting through `Sandbox.call` next to the shortest raw wasmtime-py path.

    .venv/bin/python bench/sandbox_call.py [--rounds 5] [--sandbox-calls 2000] [--raw-calls 50000] [--json]

- sandbox: `Sandbox.call("greeting", "greet", name)`: a fresh Store and instance per call, fuel, epoch
  deadline, memory cap, alloc + bounds-checked copy in, call, checked copy out, UTF-8 decode (no deallocs:
  the instance is dropped right after the call).
- raw: one Store and instance made once (plain Engine: no fuel, no epoch), export handles looked up once, the
  input written once; each call is `greet(store, ptr, len)`, an unchecked `Memory.read` of the answer and a
  `dealloc` (without it the module's heap would grow by one answer per call).
- fresh: for scale, what a new Store + instance per call costs without any of the sandbox's work
  (same engine settings as the sandbox, fuel and deadline set, no WASI, no checks), on the public API.
- batch: `Sandbox.call_many` over --batch-items names (one instance per chunk, the batch export), per item.

The measurements are interleaved (sandbox, raw, fresh, sandbox, raw, fresh, ...) for `--rounds` rounds and
the median per-call time of each is reported, so that a noisy neighbour skews all of them alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import wasmtime

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from worker.catalog import ModuleCatalog  # noqa: E402
from worker.config import Settings  # noqa: E402
from worker.sandbox import Sandbox  # noqa: E402
from worker.sandbox.engine import WASMTIME_VERSION, make_engine  # noqa: E402

MANIFEST = ROOT / "modules" / "manifest.json"
MODULE, FUNCTION = "greeting", "greet"
U32 = 0xFFFF_FFFF


def _func(exports: Mapping[str, object], name: str) -> wasmtime.Func:
    func = exports[name]
    assert isinstance(func, wasmtime.Func)
    return func


def sandbox_path(sandbox: Sandbox, name: str) -> Callable[[int], str]:
    def run(n: int) -> str:
        call = sandbox.call
        out = ""
        for _ in range(n):
            out = call(MODULE, FUNCTION, name).output
        return out

    return run


def raw_path(wasm_path: Path, name: str) -> tuple[Callable[[int], str], Callable[[], None]]:
    engine = wasmtime.Engine()
    module = wasmtime.Module.from_file(engine, str(wasm_path))
    store = wasmtime.Store(engine)
    exports = wasmtime.Instance(store, module, []).exports(store)
    alloc, dealloc, greet = _func(exports, "alloc"), _func(exports, "dealloc"), _func(exports, "greet")
    memory = exports["memory"]
    assert isinstance(memory, wasmtime.Memory)
    data = name.encode()
    ptr = alloc(store, len(data))
    memory.write(store, data, ptr)

    def run(n: int) -> str:
        out: bytes | bytearray = b""
        for _ in range(n):
            packed = greet(store, ptr, len(data))
            out_ptr, out_len = (packed >> 32) & U32, packed & U32
            out = memory.read(store, out_ptr, out_ptr + out_len)
            dealloc(store, out_ptr, out_len)
        return out.decode()

    return run, store.close


def fresh_path(sandbox: Sandbox, name: str) -> Callable[[int], str]:
    engine = make_engine()
    module = wasmtime.Module(engine, sandbox.catalog.resolve(MODULE).path.read_bytes())
    pre = wasmtime.Linker(engine).instantiate_pre(module)
    data = name.encode()

    def run(n: int) -> str:
        out: bytes | bytearray = b""
        for _ in range(n):
            store = wasmtime.Store(engine)
            store.set_fuel(100_000_000)
            store.set_epoch_deadline(1 << 40)
            exports = pre.instantiate(store).exports(store)
            memory = exports["memory"]
            assert isinstance(memory, wasmtime.Memory)
            ptr = _func(exports, "alloc")(store, len(data))
            memory.write(store, data, ptr)
            packed = _func(exports, "greet")(store, ptr, len(data))
            out_ptr, out_len = (packed >> 32) & U32, packed & U32
            out = memory.read(store, out_ptr, out_ptr + out_len)
            store.close()
        return out.decode()

    return run


def batch_path(sandbox: Sandbox, name: str, items: int) -> Callable[[int], str]:
    """`Sandbox.call_many` over `items` names per call (one instance per chunk); n counts items."""
    names = [name] * items

    def run(n: int) -> str:
        out = ""
        for _ in range(max(1, n // items)):
            results = sandbox.call_many(MODULE, FUNCTION, names)
            last = results[-1]
            out = last.output if not isinstance(last, Exception) else repr(last)
        return out

    return run


def per_call_us(run: Callable[[int], str], n: int, expected: str) -> float:
    started = time.perf_counter()
    out = run(n)
    elapsed = time.perf_counter() - started
    if out != expected:
        raise SystemExit(f"wrong answer {out!r}, expected {expected!r}")
    return elapsed / n * 1e6


def main_result(
    *,
    rounds: int = 5,
    sandbox_calls: int = 2000,
    raw_calls: int = 50_000,
    fresh_calls: int = 2000,
    batch_items: int = 500,
    name: str = "Alice",
) -> dict[str, object]:
    """Interleaved rounds of every path; the median per-call (per-item for the batch) time of each."""
    expected = f"Hello World, {name}!"
    with (
        tempfile.TemporaryDirectory() as cache,
        Sandbox(ModuleCatalog.from_manifests([MANIFEST]), settings=Settings(cache_dir=Path(cache))) as sandbox,
    ):
        paths: dict[str, tuple[Callable[[int], str], int]] = {}
        raw, close_raw = raw_path(sandbox.catalog.resolve(MODULE).path, name)
        paths["sandbox"] = (sandbox_path(sandbox, name), sandbox_calls)
        paths["raw"] = (raw, raw_calls)
        paths["fresh"] = (fresh_path(sandbox, name), fresh_calls)
        paths["batch"] = (batch_path(sandbox, name, batch_items), batch_items * max(1, sandbox_calls // 50))
        for run, n in paths.values():  # warm up: compile, first-touch memory, caches
            per_call_us(run, max(1, n // 10), expected)
        samples: dict[str, list[float]] = {key: [] for key in paths}
        for _ in range(rounds):
            for key, (run, n) in paths.items():
                count = max(1, n // batch_items) * batch_items if key == "batch" else n
                samples[key].append(per_call_us(run, count, expected))
        close_raw()

    median = {key: statistics.median(values) for key, values in samples.items()}
    return {
        "sandbox_us": round(median["sandbox"], 2),
        "raw_us": round(median["raw"], 3),
        "ratio": round(median["sandbox"] / median["raw"], 2),
        "fresh_instance_us": round(median["fresh"], 2),
        "batch_item_us": round(median["batch"], 3),
        "batch_items": batch_items,
        "rounds": rounds,
        "calls_per_round": {key: n for key, (_, n) in paths.items()},
        "samples_us": {key: [round(v, 3) for v in values] for key, values in samples.items()},
        "wasmtime": WASMTIME_VERSION,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved repetitions (median is reported)")
    parser.add_argument("--sandbox-calls", type=int, default=2000, help="Sandbox.call calls per round")
    parser.add_argument("--raw-calls", type=int, default=50_000, help="raw calls per round")
    parser.add_argument("--fresh-calls", type=int, default=2000, help="fresh-instance calls per round")
    parser.add_argument("--batch-items", type=int, default=500, help="items per call_many chunk")
    parser.add_argument("--name", default="Alice")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = main_result(
        rounds=args.rounds,
        sandbox_calls=args.sandbox_calls,
        raw_calls=args.raw_calls,
        fresh_calls=args.fresh_calls,
        batch_items=args.batch_items,
        name=args.name,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(f"greeting {FUNCTION}({args.name!r}), median of {args.rounds} interleaved rounds")
        print(f"  Sandbox.call (fresh instance, all checks): {result['sandbox_us']:>10.2f} µs/call")
        print(f"  raw wasmtime-py (reused instance, no checks): {result['raw_us']:>7.3f} µs/call")
        print(f"  ratio sandbox/raw: {result['ratio']:.2f}x")
        print(f"  (fresh Store+instance per call, no checks: {result['fresh_instance_us']:.2f} µs/call)")
        print(f"  Sandbox.call_many, {args.batch_items} per chunk: {result['batch_item_us']:.3f} µs/item")
    return 0


if __name__ == "__main__":
    sys.exit(main())
