"""`wasmq call` as a user runs it: a subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.sandbox import HOSTILE_DIR, ROOT
from worker.cli.call import release_wasi_streams

TIMEOUT_S = 120


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMQ_")}
    env["WASMQ_CACHE_DIR"] = str(tmp_path_factory.mktemp("cli-cache"))
    return env


def wasmq(env: dict[str, str], *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        cwd=ROOT,
        env=env,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def one_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data


def test_call_prints_the_greeting(cli_env: dict[str, str]) -> None:
    proc = wasmq(cli_env, "call", "greeting", "greet", "--input", "Alice")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hello World, Alice!\n"


def test_call_json_shape(cli_env: dict[str, str]) -> None:
    proc = wasmq(cli_env, "call", "greeting-c", "wasm_memory_c_format_hello_world", "--input", "Zoë 🌍", "--json")
    assert proc.returncode == 0, proc.stderr
    data = one_json(proc)
    assert set(data) == {"ok", "output", "usage"}
    assert data["ok"] is True
    assert data["output"] == "Hello World, Zoë 🌍!"
    assert set(data["usage"]) == {"fuel", "wall_ms", "memory_bytes"}
    assert data["usage"]["fuel"] > 0


def test_input_file_and_stdin(cli_env: dict[str, str], tmp_path: Path) -> None:
    name = tmp_path / "name.txt"
    name.write_text("Ünïcödé", encoding="utf-8")
    proc = wasmq(cli_env, "call", "greeting", "wasm_memory_rust_format_hello_world", "--input-file", str(name))
    assert (proc.returncode, proc.stdout) == (0, "Hello World, Ünïcödé!\n")
    proc = wasmq(cli_env, "call", "greeting", "greet", "--input-file", "-", stdin=b"Bob")
    assert (proc.returncode, proc.stdout) == (0, "Hello World, Bob!\n")


def test_input_file_that_is_not_utf8_is_invalid_input(cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\xff\xfe")
    proc = wasmq(cli_env, "call", "greeting", "greet", "--input-file", str(bad), "--json")
    assert proc.returncode == 1
    assert one_json(proc)["error"]["type"] == "InvalidInput"


@pytest.mark.parametrize(
    ("wasm", "abi", "function", "error"),
    [
        ("trap.wasm", "packed", "greet", "ModuleTrap"),
        ("out_of_bounds.wasm", "packed", "greet", "InvalidOutput"),
        ("malformed.wasm", "packed", "greet", "ModuleRejected"),
        ("forbidden_import.wasm", "packed", "greet", "ModuleRejected"),
        ("seed_c_no_nul.wasm", "seed-c", "wasm_memory_c_format_hello_world", "InvalidOutput"),
        ("wasi_probe.wasm", "seed-rust", "exit_now", "ModuleTrap"),
    ],
)
def test_hostile_module_file_fails_cleanly(
    cli_env: dict[str, str], wasm: str, abi: str, function: str, error: str
) -> None:
    args = ["call", "--wasm", str(HOSTILE_DIR / wasm), "--abi", abi, "--function", function, "--input", "x"]
    proc = wasmq(cli_env, *args, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = one_json(proc)
    assert data["ok"] is False
    assert data["error"]["type"] == error
    assert isinstance(data["error"]["message"], str) and data["error"]["retryable"] is False
    text = wasmq(cli_env, *args)
    assert text.returncode == 1
    assert text.stdout == ""
    assert f"error: {error}:" in text.stderr


def test_deadline_through_the_cli(cli_env: dict[str, str]) -> None:
    args = ["call", "--wasm", str(HOSTILE_DIR / "loop_forever.wasm"), "--function", "greet"]
    args += ["--timeout-ms", "100", "--fuel", str(10**13)]  # a module file brings its own (default) limits
    proc = wasmq(cli_env, *args, "--json")
    assert proc.returncode == 1
    error = one_json(proc)["error"]
    assert (error["type"], error["retryable"]) == ("DeadlineExceeded", True)


def test_good_module_file(cli_env: dict[str, str]) -> None:
    proc = wasmq(cli_env, "call", "--wasm", str(HOSTILE_DIR / "good_wat.wasm"), "--function", "greet", "--input", "Al")
    assert (proc.returncode, proc.stdout) == (0, "Hello World, Al!\n")


def test_chatty_module_output_goes_to_stderr_bounded(cli_env: dict[str, str]) -> None:
    args = ["--wasm", str(HOSTILE_DIR / "wasi_probe.wasm"), "--abi", "seed-rust", "--function", "chatty"]
    proc = wasmq(cli_env, "call", *args, "--input", "Z")
    assert (proc.returncode, proc.stdout) == (0, "Hello World, Z!\n")
    assert "[module stdout]" in proc.stderr and "more bytes dropped" in proc.stderr
    assert len(proc.stderr) < 4 * 64 * 1024  # two bounded streams, not 2 MiB


@pytest.mark.parametrize(
    ("module", "function", "error"),
    [
        ("nope", "greet", "ModuleNotFound"),
        ("greeting", "nope", "InvalidInput"),
        ("greeting@9", "greet", "ModuleNotFound"),
    ],
)
def test_bad_requests_exit_1(cli_env: dict[str, str], module: str, function: str, error: str) -> None:
    proc = wasmq(cli_env, "call", module, function, "--input", "x", "--json")
    assert proc.returncode == 1
    assert one_json(proc)["error"]["type"] == error


def test_limit_above_the_module_maximum_exits_1(cli_env: dict[str, str]) -> None:
    proc = wasmq(cli_env, "call", "greeting", "greet", "--fuel", str(10**12), "--json")
    assert proc.returncode == 1
    assert one_json(proc)["error"]["type"] == "InvalidInput"


@pytest.mark.parametrize(
    "args",
    [
        ["call"],
        ["call", "greeting"],
        ["call", "--wasm", str(HOSTILE_DIR / "trap.wasm")],  # no --function
        ["call", "--wasm", str(HOSTILE_DIR / "trap.wasm"), "greeting", "--function", "greet"],
        ["call", "--wasm", str(HOSTILE_DIR / "trap.wasm"), "--function", "greet", "--abi", "fortran"],
        ["call", "--wasm", "/no/such/module.wasm", "--function", "greet"],
        ["call", "greeting", "greet", "--input-file", "/no/such/input.txt"],
        ["call", "greeting", "greet", "--input", "a", "--input-file", "b"],
        ["call", "greeting", "greet", "--fuel", "-1"],
        ["call", "greeting", "greet", "--fuel", "lots"],
        ["frobnicate"],
        [],
    ],
    ids=lambda a: " ".join(a[1:] if a and a[0] == "call" else a)[-40:] or "nothing",
)
def test_usage_errors_exit_2(cli_env: dict[str, str], args: list[str]) -> None:
    proc = wasmq(cli_env, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip()
    json_proc = wasmq(cli_env, *args, "--json")
    assert json_proc.returncode == 2
    assert one_json(json_proc)["error"]["type"] == "UsageError"


def test_help_exits_0(cli_env: dict[str, str]) -> None:
    proc = wasmq(cli_env, "call", "--help")
    assert proc.returncode == 0
    assert "--wasm" in proc.stdout


@pytest.mark.timeout(900)
def test_a_wasi_module_call_never_aborts_at_exit(cli_env: dict[str, str]) -> None:
    """The process used to abort (SIGABRT, exit 134) after printing, about one run in thirty: wasmtime released
    the module's output streams on its own threads while the interpreter was finalizing (worker/cli/call.py)."""
    runs = [
        ["call", "--wasm", str(HOSTILE_DIR / "wasi_probe.wasm"), "--abi", "seed-rust", "--function", function,
         "--input", "x"]
        for function in ("exit_now", "read_secret", "chatty") for _ in range(12)
    ]  # fmt: skip
    with ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(lambda args: wasmq(cli_env, *args).returncode, runs))
    assert sorted(set(codes)) == [0, 1]  # chatty and read_secret answer (0), exit_now is a ModuleTrap (1)
    assert -6 not in codes and 134 not in codes


def test_releasing_the_streams_waits_for_wasmtime_and_no_longer(monkeypatch: pytest.MonkeyPatch) -> None:
    from wasmtime import _wasi

    handles: dict[int, object] = {1: object()}
    monkeypatch.setattr(_wasi.CUSTOM_OUTPUTS, "handles", handles)
    threading.Timer(0.05, handles.clear).start()  # as wasmtime's finalizer does, from another thread
    assert release_wasi_streams(timeout_s=30)
    handles[2] = object()
    assert not release_wasi_streams(timeout_s=0.01)  # bounded: a stream never released does not hang the command
