"""Checking a module exactly as a worker would load it (hash, compile, imports, exports), in a child process
under CPU-time and memory limits: compiling is untrusted work too (a module can be made to take minutes or
gigabytes to compile), so it never runs unbounded in the publisher's process.

`python -m worker.catalog.check` is the child. It reads `{"entry", "wasm", "artifact"}` (the publication's
JSON, the module file, where to write the compiled artifact) on stdin, loads the module with a `Sandbox`,
writes the serialized artifact, and prints `{"ok": true}` or `{"ok": false, "error": {...}}`. It gets no
WASMQ_* variable (no credentials) and no precompiled cache.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..config import Settings
from ..errors import ModuleRejected, WasmqError
from ..sandbox import Sandbox
from ..spec import MIB, ModuleSpec
from .entry import entry_from_spec, spec_from_entry

OUT_OF_MEMORY = 3  # the child's exit status when Python ran out of memory (wasmtime aborts instead)


class _OneModule:
    """A `ModuleSource` of one spec and its bytes."""

    def __init__(self, spec: ModuleSpec, wasm: bytes) -> None:
        self.spec, self.bytes = spec, wasm

    def resolve(self, ref: str) -> ModuleSpec:
        return self.spec

    def wasm(self, spec: ModuleSpec) -> bytes:
        return self.bytes

    def __iter__(self) -> Iterator[ModuleSpec]:
        yield self.spec


def check_module(spec: ModuleSpec, wasm: bytes) -> bytes:
    """Load `spec` with these bytes as a worker would (in this process); its serialized compiled artifact."""
    with Sandbox(_OneModule(spec, wasm), settings=Settings(cache_dir=None)) as sandbox:
        sandbox.load(spec)
        if spec.is_component:
            return bytes(sandbox.components.loader.loaded(spec).component.serialize())
        return bytes(sandbox.core.compiled(spec).module.serialize())


def check_bounded(spec: ModuleSpec, wasm: bytes, *, cpu_s: int, memory_mb: int) -> bytes:
    """`check_module` in a child process with at most `cpu_s` of CPU time and `memory_mb` of address space;
    `ModuleRejected` saying which limit a module exceeded. Returns the compiled artifact."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMQ_")}

    def limit() -> None:  # in the child, before it runs anything
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * MIB, memory_mb * MIB))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    with tempfile.TemporaryDirectory(prefix="wasmq-check-") as tmp:
        module, artifact = Path(tmp) / "module.wasm", Path(tmp) / "artifact.cwasm"
        module.write_bytes(wasm)
        request = json.dumps({"entry": entry_from_spec(spec), "wasm": str(module), "artifact": str(artifact)})
        try:
            done = subprocess.run(
                [sys.executable, "-m", "worker.catalog.check"], input=request.encode(), capture_output=True,
                env=env, preexec_fn=limit, timeout=3 * cpu_s + 30, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise ModuleRejected(f"module {spec.ref}: checking it did not finish in {3 * cpu_s + 30} s") from None
        answer = _answer(done.stdout)
        if answer is not None and answer.get("ok") is True and artifact.exists():
            return artifact.read_bytes()
        error = answer.get("error") if answer is not None else None
        if isinstance(error, dict):
            raise WasmqError.from_dict(error)
        raise _why(spec, done, cpu_s=cpu_s, memory_mb=memory_mb)


def _answer(stdout: bytes) -> dict[str, object] | None:
    lines = stdout.decode(errors="replace").strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        return None
    return answer if isinstance(answer, dict) else None


def _why(spec: ModuleSpec, done: subprocess.CompletedProcess[bytes], *, cpu_s: int, memory_mb: int) -> ModuleRejected:
    """The child died without an answer: which limit it hit."""
    if done.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return ModuleRejected(
            f"module {spec.ref}: compiling it takes more than {cpu_s} s of CPU time (WASMQ_COMPILE_CPU_S)"
        )
    stderr = done.stderr.decode(errors="replace")
    if done.returncode in (OUT_OF_MEMORY, -signal.SIGABRT) or "memory allocation" in stderr:
        return ModuleRejected(
            f"module {spec.ref}: compiling it needs more than {memory_mb} MiB of memory (WASMQ_COMPILE_MEMORY_MB)"
        )
    tail = stderr.strip().splitlines()[-1:] or ["no output"]
    return ModuleRejected(f"module {spec.ref}: checking it failed (exit status {done.returncode}): {tail[0][:300]}")


def main() -> int:
    """The child: check one module, answer in one JSON line."""
    try:
        request = json.loads(sys.stdin.read())
        wasm = Path(request["wasm"]).read_bytes()
        spec = spec_from_entry(request["entry"], "module to check", path=None, wit=request["entry"].get("wit"))
        Path(request["artifact"]).write_bytes(check_module(spec, wasm))
        answer: dict[str, object] = {"ok": True}
    except WasmqError as exc:
        answer = {"ok": False, "error": exc.to_dict()}
    except MemoryError:
        return OUT_OF_MEMORY
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
