"""Compiling untrusted wasm in a separate process, under CPU-time, memory and wall-time limits.

Compilation is work the module's author controls: 80,000 nested loops or 100,000 data segments make
Cranelift spend tens of seconds and gigabytes. So the bytes are compiled by a fresh interpreter
(`python -m worker.sandbox.compiler`, started with `posix_spawn`: no fork of a process that has an Engine and
an epoch ticker thread) that first limits itself, then compiles on an Engine made by the same `make_engine`
as the worker's and writes the serialized artifact to its stdout; the parent `deserialize`s it on its own
Engine (wasmtime checks that the two engines' settings agree).

Limits (Settings `compile_timeout_s`, `compile_memory_mb`):
- CPU time: `RLIMIT_CPU` of `timeout_s` in the child (SIGXCPU, then SIGKILL a second later);
- wall time: the parent kills the child after twice `timeout_s` (a busy machine gives it less than a core);
- memory: `RLIMIT_AS` of `memory_mb` in the child, so an allocation past it fails (the child aborts).
Whatever ends the child other than success (a limit, a crash, a signal, bad output) is a `ModuleRejected`
that names the limit or the cause, with the wall time, CPU time and peak memory the child used (from
`wait4`), so a publisher can tell "too big for this deployment" from "not WebAssembly".

Protocol: wasm on stdin (an unlinked temporary file), artifact on stdout (another), a JSON object on stderr
when the module is invalid (`{"invalid": message}`) or the child fails some other way. Nothing is named on
disk. The child asks the kernel to kill it if the parent dies (`PR_SET_PDEATHSIG`).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import select
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from ..errors import ModuleRejected

Kind = Literal["module", "component"]
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MEMORY_MB = 2048
WALL_FACTOR = 2.0  # wall-time limit = this x the CPU-time limit
EXIT_INVALID = 2  # the child's exit status for "the bytes are not a valid module/component"
EXIT_FAILED = 3  # anything else the child caught (MemoryError, an unexpected exception)
_CORE_HEADER = b"\x00asm\x01\x00\x00\x00"  # a core module's magic + version (components: 0d 00 01 00)
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory that holds the `worker` package


@dataclass(frozen=True, kw_only=True)
class CompileLimits:
    """How much one compilation may use."""

    timeout_s: float = DEFAULT_TIMEOUT_S  # CPU seconds; wall time gets WALL_FACTOR times as much
    memory_mb: int = DEFAULT_MEMORY_MB  # address space of the compiling process

    @property
    def wall_s(self) -> float:
        return self.timeout_s * WALL_FACTOR


@dataclass(frozen=True)
class CompileUsage:
    """What the compiling process used (from `wait4`)."""

    wall_s: float
    cpu_s: float
    max_rss_mb: float

    def to_dict(self) -> dict[str, float]:
        return {"wall_s": round(self.wall_s, 3), "cpu_s": round(self.cpu_s, 3), "max_rss_mb": round(self.max_rss_mb, 1)}


@dataclass(frozen=True)
class Compiled:
    artifact: bytes  # what `Module.deserialize` / `Component.deserialize` take, on an Engine of `make_engine()`
    usage: CompileUsage


class BoundedCompiler:
    """Compiles wasm bytes in a child process under `limits`; see the module docstring."""

    def __init__(self, limits: CompileLimits | None = None) -> None:
        self.limits = limits or CompileLimits()

    def compile(self, wasm: bytes, *, kind: Kind, ref: str) -> Compiled:
        """The serialized artifact, or `ModuleRejected` (invalid bytes, a limit, a crash of the compiler)."""
        limits = self.limits
        argv = [
            sys.executable,
            "-m",
            "worker.sandbox.compiler",
            "--kind",
            kind,
            "--cpu-s",
            str(max(1, math.ceil(limits.timeout_s))),
            "--memory-mb",
            str(limits.memory_mb),
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
        # A Rust panic on a failed allocation with backtraces on allocates again while printing the backtrace
        # and deadlocks instead of aborting (seen at RLIMIT_AS 300 MB on 80,000 nested loops).
        env["RUST_BACKTRACE"] = env["RUST_LIB_BACKTRACE"] = "0"
        with (
            tempfile.TemporaryFile() as stdin,
            tempfile.TemporaryFile() as stdout,
            tempfile.TemporaryFile() as stderr,
        ):
            stdin.write(wasm)
            stdin.flush()
            stdin.seek(0)
            started = time.monotonic()
            pid = os.posix_spawn(
                sys.executable,
                argv,
                env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, stdin.fileno(), 0),
                    (os.POSIX_SPAWN_DUP2, stdout.fileno(), 1),
                    (os.POSIX_SPAWN_DUP2, stderr.fileno(), 2),
                ],
            )
            status, rusage, killed = _wait(pid, limits.wall_s)
            wall = time.monotonic() - started
            usage = CompileUsage(
                wall_s=wall, cpu_s=rusage.ru_utime + rusage.ru_stime, max_rss_mb=rusage.ru_maxrss / 1024
            )
            code = os.waitstatus_to_exitcode(status)
            if code == 0 and not killed:
                stdout.seek(0)
                artifact = stdout.read()
                if artifact:
                    return Compiled(artifact, usage)
            stderr.seek(0)
            report = _tail(stderr)
        raise _rejection(ref=ref, kind=kind, wasm=wasm, code=code, killed=killed, report=report, usage=usage,
                         limits=limits)  # fmt: skip


def _wait(pid: int, timeout_s: float) -> tuple[int, Any, bool]:
    """Wait for `pid` at most `timeout_s`, SIGKILL it after that; (wait status, rusage, whether we killed it)."""
    killed = False
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux >= 5.3: poll
        pidfd = -1
    try:
        if pidfd >= 0:
            ready, _, _ = select.select([pidfd], [], [], timeout_s)
            done = bool(ready)
        else:
            deadline = time.monotonic() + timeout_s
            delay = 0.001
            while True:
                found, status, rusage = os.wait4(pid, os.WNOHANG)
                if found:
                    return status, rusage, False
                if time.monotonic() >= deadline:
                    break
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
            done = False
        if not done:
            killed = True
            os.kill(pid, signal.SIGKILL)
        _, status, rusage = os.wait4(pid, 0)
        return status, rusage, killed
    except BaseException:
        # Never leave a compiler behind (KeyboardInterrupt, a Celery time limit raised in this thread, ...).
        try:
            os.kill(pid, signal.SIGKILL)
            os.wait4(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        raise
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def _tail(stream: IO[bytes], limit: int = 4096) -> str:
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(max(0, size - limit))
    return stream.read().decode("utf-8", errors="replace").strip()


def _report(text: str) -> dict[str, Any]:
    """The child's last JSON line on stderr, if any."""
    for raw in reversed(text.splitlines()):
        line = raw.strip()
        if line.startswith("{"):
            try:
                found = json.loads(line)
            except ValueError:
                continue
            if isinstance(found, dict):
                return found
    return {}


def _rejection(
    *,
    ref: str,
    kind: Kind,
    wasm: bytes,
    code: int,
    killed: bool,
    report: str,
    usage: CompileUsage,
    limits: CompileLimits,
) -> ModuleRejected:
    from .engine import explain_invalid  # the feature names live with the engine settings

    seen = f"after {usage.wall_s:.1f} s wall, {usage.cpu_s:.1f} s CPU, {usage.max_rss_mb:.0f} MB peak memory"
    details: dict[str, Any] = {"compile": usage.to_dict()}
    found = _report(report)
    what = "module" if kind == "module" else "component"
    if code == EXIT_INVALID and "invalid" in found:
        message = str(found["invalid"])
        feature, cause = explain_invalid(message)
        if feature:
            details["feature"] = feature
        if kind == "component":
            hint = " (its header is a core module's: `wasm-tools component new` makes one)"
            hint = hint if wasm[:8] == _CORE_HEADER else ""
            return ModuleRejected(f"module {ref} is not a valid WebAssembly component{hint}: {cause}", details)
        return ModuleRejected(f"module {ref} is not valid WebAssembly: {cause}", details)
    if killed:
        details["limit"] = "compile_timeout_s"
        return ModuleRejected(
            f"compiling {what} {ref} took longer than its wall-time limit of {limits.wall_s:g} s "
            f"(twice the compile_timeout_s of {limits.timeout_s:g} s CPU); killed {seen}",
            details,
        )
    # RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL a second later (if SIGXCPU did not end it). A SIGKILL
    # before the CPU limit came from elsewhere (the kernel's OOM killer, an operator): a crash, below.
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and usage.cpu_s >= limits.timeout_s):
        details["limit"] = "compile_timeout_s"
        return ModuleRejected(
            f"compiling {what} {ref} used up its CPU-time limit of {limits.timeout_s:g} s (compile_timeout_s); "
            f"stopped {seen}",
            details,
        )
    last = _cause_line(report)
    if _out_of_memory(found, report):
        details["limit"] = "compile_memory_mb"
        return ModuleRejected(
            f"compiling {what} {ref} ran out of its memory limit of {limits.memory_mb} MB (compile_memory_mb); "
            f"stopped {seen}" + (f": {last}" if last else ""),
            details,
        )
    cause = f"signal {signal.Signals(-code).name}" if code < 0 and -code in _SIGNALS else f"exit status {code}"
    if code == 0:
        cause = "no artifact"
    elif code == -signal.SIGKILL:
        cause += ", from outside (the kernel's OOM killer?)"
    details["crash"] = cause
    return ModuleRejected(
        f"the compiler process for {what} {ref} failed ({cause}) {seen}" + (f": {last}" if last else ""), details
    )


_SIGNALS = {int(s) for s in signal.Signals}


def _cause_line(report: str) -> str:
    """The line of the child's stderr that says what went wrong: the last one that is not a Rust hint."""
    lines = [line.strip() for line in report.splitlines() if line.strip() and not line.startswith("note:")]
    for line in reversed(lines):
        if "out of memory" in line.lower() or "out-of-memory" in line or "memory allocation of" in line:
            return line[:300]
    return lines[-1][:300] if lines else ""


def _out_of_memory(found: dict[str, Any], report: str) -> bool:
    """An allocation failure: Rust's "memory allocation of N bytes failed" abort, Python's MemoryError, or
    mmap/reservation failures wasmtime reports as errors."""
    text = report.lower()
    return (
        found.get("error") == "MemoryError"
        or "memory allocation of" in text
        or "out of memory" in text
        or "out-of-memory" in text
        or "cannot allocate memory" in text
        or "failed to allocate" in text
        or "failed to map segment" in text  # too little address space to load the wasmtime library at all
    )


# -- the child -----------------------------------------------------------------------------------------


def _limit_self(cpu_s: int, memory_mb: int) -> None:
    import resource

    try:  # die with the parent (Linux): a compiler must not outlive the worker that waits for it
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def _child(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.sandbox.compiler", description="compile wasm from stdin")
    parser.add_argument("--kind", choices=("module", "component"), required=True)
    parser.add_argument("--cpu-s", type=int, required=True)
    parser.add_argument("--memory-mb", type=int, required=True)
    args = parser.parse_args(argv)
    _limit_self(args.cpu_s, args.memory_mb)
    try:
        import wasmtime

        from .component.meter import MeterNameTaken, compile_metered
        from .engine import make_engine

        wasm = sys.stdin.buffer.read()
        engine = make_engine(pooling=False)  # compiles only; the pool would not fit RLIMIT_AS
        try:
            if args.kind == "component":
                artifact = bytes(compile_metered(engine, wasm).serialize())  # with the host's memory meter
            else:
                artifact = bytes(wasmtime.Module(engine, wasm).serialize())
        except (wasmtime.WasmtimeError, MeterNameTaken) as exc:
            sys.stderr.write(json.dumps({"invalid": str(exc)}) + "\n")
            return EXIT_INVALID
        sys.stdout.buffer.write(artifact)
        sys.stdout.buffer.flush()
        return 0
    except BaseException as exc:  # MemoryError, or a failure to write: reported, never a traceback only
        sys.stderr.write(json.dumps({"error": type(exc).__name__, "message": str(exc)[:500]}) + "\n")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(_child())
