"""What each language's greeting costs a worker: size, compile, cold start, a warm call, memory.

    .venv/bin/python bench/toolchain_modules.py [--only NAME ...] [--json]

Each greeting goes through a real Sandbox, as a worker runs it (bounded compiler in a child process,
authenticated precompiled cache, the backend of its ABI, a fresh instance per call):
- compile: the first call of a Sandbox with an empty cache directory (the child process compiling it, then
  the call), what a worker pays the first time it meets a module no one compiled for it;
- cold start: the first call of a fresh Sandbox whose cache holds the artifact (authenticate, deserialize,
  instantiate, call), what a new worker process pays for a module it has compiled before;
- warm: the next call (a fresh instance of the loaded module);
- memory: the call's `memory_bytes` (the linear memory after the call).
The Rust, C, WAT-component and Extism greetings come from modules/manifest.json, the componentize-py and jco
greetings (not in the manifest: 12 to 18 MB) from a manifest this script writes. Compile times are CPU-bound
and single-threaded: on a machine shared with other work they vary; cold starts much less.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from worker.catalog import ModuleCatalog  # noqa: E402
from worker.config import Settings  # noqa: E402
from worker.sandbox import Sandbox  # noqa: E402

MANIFEST = ROOT / "modules" / "manifest.json"
MODULES = {  # name: (module, function, file)
    "rust": ("greeting", "greet", "modules/greeting/greeting.wasm"),
    "c": ("greeting-c", "greet", "modules/greeting_c/greeting_c.wasm"),
    "assemblyscript-extism": ("greeting-extism", "greet", "modules/greeting_extism/greeting_extism.wasm"),
    "wat-component": ("greeting-component", "greet", "modules/greeting_component/greeting_component.wasm"),
    "python-component": ("greeting-py", "greet", "modules/greeting_py/greeting_py.wasm"),
    "javascript-component": ("greeting-js", "greet", "modules/greeting_js/greeting_js.wasm"),
}
NAME = "Zoë"


def big_components_manifest(directory: Path) -> Path:
    entries = []
    for module, _, file in (MODULES["python-component"], MODULES["javascript-component"]):
        path = ROOT / file
        entries.append({
            "name": module, "version": "1.0.0", "file": str(path), "abi": "component",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "functions": {"greet": {"abi": "component"}},
            "wit": str(ROOT / "modules" / "greeting_component" / "greeting.wit"), "world": "greeter",
            "limits": {"fuel": 10**9, "timeout_ms": 10_000, "memory_mb": 256},
        })  # fmt: skip
    path = directory / "toolchains.json"
    path.write_text(json.dumps({"modules": entries}))
    return path


def first_call(catalog: ModuleCatalog, cache: Path, module: str, function: str) -> tuple[float, Any]:
    with Sandbox(catalog, settings=Settings(cache_dir=cache)) as sandbox:
        started = time.perf_counter()
        result = sandbox.call(module, function, NAME)
        elapsed = time.perf_counter() - started
        assert result.output.endswith(f", {NAME}!"), result.output
        again = time.perf_counter()
        sandbox.call(module, function, NAME)
        return elapsed, (result, time.perf_counter() - again)


def measure(name: str, catalog: ModuleCatalog, scratch: Path) -> dict[str, Any]:
    module, function, file = MODULES[name]
    cache = scratch / f"cache-{name}"
    cache.mkdir(mode=0o700)
    compile_s, _ = first_call(catalog, cache, module, function)
    cold_s, (result, warm_s) = first_call(catalog, cache, module, function)
    wasm = (ROOT / file).read_bytes()
    return {
        "language": name,
        "module": file,
        "bytes": len(wasm),
        "sha256": hashlib.sha256(wasm).hexdigest(),
        "artifact_bytes": sum(f.stat().st_size for f in cache.iterdir() if f.name != ".key"),
        "compile_s": round(compile_s, 2),
        "cold_start_ms": round(cold_s * 1000, 1),
        "warm_call_ms": round(warm_s * 1000, 2),
        "memory_bytes": result.usage.memory_bytes,
    }


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(MODULES), default=list(MODULES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        catalog = ModuleCatalog.from_manifests([MANIFEST, big_components_manifest(scratch)])
        rows = [measure(name, catalog, scratch) for name in args.only]
    if args.json:
        print(json.dumps(rows))
    else:
        head = ("language", "bytes", "compile", "cold start", "warm", "memory", "artifact")
        print("{:<22} {:>10} {:>9} {:>11} {:>9} {:>10} {:>10}".format(*head))
        for row in rows:
            print(
                f"{row['language']:<22} {row['bytes']:>10} {row['compile_s']:>8.2f}s {row['cold_start_ms']:>9.1f}ms "
                f"{row['warm_call_ms']:>7.2f}ms {row['memory_bytes']:>10} {row['artifact_bytes']:>10}"
            )
    return rows


if __name__ == "__main__":
    main()
