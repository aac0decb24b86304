"""What the toolchain-built greetings cost a worker: size, compile, serialize, deserialize, one call.

    .venv/bin/python bench/toolchain_modules.py [--only NAME ...] [--json]

For each module: its size and sha256; compile time on the worker's engine (`make_engine()`: fuel and epoch
instrumentation, parallel compilation off, as a worker compiles); `serialize()` time and artifact size;
`deserialize()` time (what a worker pays on a precompiled-cache hit); and the wall time of one greeting in a
fresh instance (the deserialized artifact, through the runner of its ABI). Compile times are CPU-bound and
single-threaded: on a machine shared with other work they vary, deserialize times much less.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import wasmtime
import wasmtime.component as wc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from worker.sandbox.component.loader import check_component  # noqa: E402
from worker.sandbox.component.runner import ComponentRunner  # noqa: E402
from worker.sandbox.component.wit import load_world  # noqa: E402
from worker.sandbox.engine import EpochTicker, make_engine  # noqa: E402
from worker.sandbox.extism import ExtismRunner, check_plugin  # noqa: E402
from worker.spec import Limits  # noqa: E402

MODULES = {
    "greeting_extism": ("modules/greeting_extism/greeting_extism.wasm", "extism"),
    "greeting_py": ("modules/greeting_py/greeting_py.wasm", "component"),
    "greeting_js": ("modules/greeting_js/greeting_js.wasm", "component"),
    "greeting_component": ("modules/greeting_component/greeting_component.wasm", "component"),  # for scale
}
WIT = ROOT / "modules" / "greeting_component" / "greeting.wit"
NAME = "Zoë"


def timed(make: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = make()
    return value, time.perf_counter() - started


def measure(name: str, path: str, abi: str) -> dict[str, Any]:
    wasm = (ROOT / path).read_bytes()
    engine = make_engine()
    ticker = EpochTicker(engine, tick_ms=5).start()
    try:
        kind: Any = wasmtime.Module if abi == "extism" else wc.Component
        compiled, compile_s = timed(lambda: kind(engine, wasm))
        artifact, serialize_s = timed(compiled.serialize)
        loaded, deserialize_s = timed(lambda: kind.deserialize(engine, artifact))
        if abi == "extism":
            plugin = check_plugin(loaded, ref=name, functions=["greet"])
            runner = ExtismRunner(engine, ticker)
            limits = {"fuel": 10**9, "timeout_ms": 10_000, "memory_bytes": 64 << 20, "max_output_bytes": 1 << 20}
            (output, _), call_s = timed(lambda: runner.call(plugin, "greet", NAME, **limits))
        else:
            world = load_world(WIT, "greeter")
            checked = check_component(engine, loaded, ref=name, world=world, functions=["greet"])
            crunner = ComponentRunner(engine, ticker)
            climits = Limits(fuel=10**10, timeout_ms=10_000, memory_mb=256)
            result, call_s = timed(lambda: crunner.call(checked, "greet", NAME, climits))
            output = result.output
    finally:
        ticker.stop()
    assert output == f"Hello World, {NAME}!", output
    return {
        "module": path,
        "abi": abi,
        "bytes": len(wasm),
        "sha256": hashlib.sha256(wasm).hexdigest(),
        "compile_s": round(compile_s, 3),
        "serialized_bytes": len(artifact),
        "serialize_ms": round(serialize_s * 1000, 2),
        "deserialize_ms": round(deserialize_s * 1000, 2),
        "first_call_ms": round(call_s * 1000, 2),
    }


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(MODULES), default=sorted(MODULES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = [measure(name, *MODULES[name]) for name in args.only]
    if args.json:
        print(json.dumps(rows))
    else:
        head = ("module", "bytes", "compile", "artifact", "serialize", "deser.", "call")
        print("{:<52} {:>10} {:>9} {:>10} {:>10} {:>8} {:>8}".format(*head))
        for row in rows:
            print(
                f"{row['module']:<52} {row['bytes']:>10} {row['compile_s']:>8.2f}s {row['serialized_bytes']:>10} "
                f"{row['serialize_ms']:>8.1f}ms {row['deserialize_ms']:>6.1f}ms {row['first_call_ms']:>6.1f}ms"
            )
    return rows


if __name__ == "__main__":
    main()
