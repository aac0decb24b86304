"""`wasmq modules add|list|show|verify|yank` as a user runs them, against the shared registry, with a real
worker that has no module file at all (`WASMQ_MANIFEST=""`): a version is served without a restart, one
version holds functions of several ABIs, a job may pin `name@version`, a yanked version is refused."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support.workers import WorkerProcess
from worker.config import Settings
from worker.errors import ModuleNotFound
from worker.producer.client import Client

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
GREETING = ROOT / "modules" / "greeting" / "greeting.wasm"
HOSTILE = ROOT / "tests" / "corpora" / "hostile"
COMPONENT = ROOT / "modules" / "greeting_component"


def wasmq(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args], env=env, capture_output=True, text=True, check=False, timeout=120
    )


def served(client: Client, ref: str, function: str, text: str, timeout: float = 30) -> str:
    """The output of the first job that is served (a new version reaches the worker within moments)."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = client.submit(ref, function, text).outcome(timeout=60)
        if outcome.error is None or time.monotonic() > deadline:
            return str(outcome.output) if outcome.error is None else f"{outcome.error.type}: {outcome.error.message}"
        time.sleep(0.05)


def test_publish_show_serve_pin_yank_verify(
    tmp_path: Path, worker_env: dict[str, str], redis_url: str, cache_dir: Path
) -> None:
    name, queue = f"seed-study-{uuid.uuid4().hex[:6]}", f"wasmq-pub-{uuid.uuid4().hex[:8]}"
    env = {**worker_env, "WASMQ_MANIFEST": "", "WASMQ_QUEUE": queue, "WASMQ_CACHE_DIR": str(tmp_path / "cache")}
    publish_and_show(name, env)
    settings = Settings(redis_url=redis_url, queue=queue, manifests=(), cache_dir=cache_dir)
    with Client(settings) as client:
        worker = WorkerProcess(env, log_dir=tmp_path, concurrency=1)
        worker.start(client)
        try:
            serve_pin_and_yank(name, env, client)
            assert worker.alive()
        finally:
            worker.stop()
    components_list_and_verify(name, env)


def publish_and_show(name: str, env: dict[str, str]) -> None:
    add = ("modules", "add", "--name", name, "--abi", "packed")
    seed_study = ("--function", "wasm_memory_rust_format_hello_world:seed-rust", "--function",
                  "wasm_memory_c_format_hello_world:seed-c", "--function", "answer:scalar", "--function", "greet",
                  "--batch", "greet=greet_many")  # fmt: skip

    done = wasmq(
        *add, "--version", "1.0.0", *seed_study, "--allow", "clock", "--env", "LANG=fr", str(GREETING), env=env
    )
    assert done.returncode == 0, done.stderr
    assert f"{name}@1.0.0 published: sha256" in done.stdout
    again = wasmq(
        *add, "--version", "1.0.0", *seed_study, "--allow", "clock", "--env", "LANG=fr", str(GREETING), env=env
    )
    assert again.returncode == 0 and "already published (identical)" in again.stdout
    other_abi = wasmq(*add, "--version", "1.0.0", "--function", "wasm_memory_c_format_hello_world:seed-c",
                      str(GREETING), env=env)  # fmt: skip
    assert other_abi.returncode == 1 and "PublishConflict" in other_abi.stderr and "functions:" in other_abi.stderr
    rejected = wasmq(*add, "--version", "9.0.0", "--function", "greet", str(HOSTILE / "missing_export.wasm"), env=env)
    assert rejected.returncode == 1 and "ModuleRejected" in rejected.stderr and "greet" in rejected.stderr
    unknown = wasmq(*add, "--version", "9.0.0", "--function", "greet", "--allow", "network", str(GREETING), env=env)
    assert unknown.returncode == 2 and "--allow knows clock, random" in unknown.stderr

    shown = json.loads(wasmq("modules", "show", name, "--json", env=env).stdout)
    assert shown["functions"] == {"answer": "scalar", "greet": "packed", "wasm_memory_c_format_hello_world": "seed-c",
                                  "wasm_memory_rust_format_hello_world": "seed-rust"}  # fmt: skip
    assert shown["batch"] == {"greet": "greet_many"} and shown["origin"] == "registry"
    assert shown["capabilities"] == {"clock": True, "random": False, "env": {"LANG": "fr"}, "output_bytes": 0}
    text = wasmq("modules", "show", f"{name}@1.0.0", env=env).stdout
    assert "clock, env LANG=fr" in text and "published_by" in text


def serve_pin_and_yank(name: str, env: dict[str, str], client: Client) -> None:
    assert client.submit(name, "wasm_memory_rust_format_hello_world", "v1").get(60) == "Hello World, v1!"
    assert client.submit(name, "answer", "").get(60) == "42"
    # Version 2 answers bytes that are not UTF-8: easy to tell apart from version 1.
    add = ("modules", "add", "--name", name, "--version", "2.0.0", "--function", "greet:packed")
    done = wasmq(*add, str(HOSTILE / "invalid_utf8.wasm"), env=env)
    assert done.returncode == 0, done.stderr
    assert served(client, name, "greet", "v2").startswith("InvalidOutput"), "the newest version, no restart"
    assert client.submit(f"{name}@1.0.0", "greet", "pinned").get(60) == "Hello World, pinned!"
    yanked = wasmq("modules", "yank", f"{name}@2.0.0", "--reason", "bad output", env=env)
    assert yanked.returncode == 0 and "yanked at" in yanked.stdout, yanked.stderr
    assert served(client, name, "greet", "v1 again") == "Hello World, v1 again!"
    with pytest.raises(ModuleNotFound, match="bad output"):  # the producer refuses it before enqueueing
        client.submit(f"{name}@2.0.0", "greet", "x")


def components_list_and_verify(name: str, env: dict[str, str]) -> None:
    comp = ("modules", "add", "--name", f"{name}-c", "--function", "greet:component", "--world", "greeter")
    done = wasmq(*comp, "--version", "1.0.0", "--wit", str(COMPONENT / "greeting.wit"),
                 str(COMPONENT / "greeting_component.wasm"), env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    bad = wasmq(*comp, "--version", "2.0.0", "--wit", str(COMPONENT / "greeting.wit"),
                str(ROOT / "tests" / "corpora" / "hostile_components" / "wrong_signature.wasm"), env=env)  # fmt: skip
    assert bad.returncode == 1 and "func(u32) -> u32" in bad.stderr
    called = wasmq("call", f"{name}-c", "greet", "--input", "component", env=env)
    assert called.stdout == "Hello World, component!\n", called.stderr

    listed = json.loads(wasmq("modules", "list", name, f"{name}-c", "--json", env=env).stdout)["modules"]
    mine = [(m["name"], m["version"], bool(m["yanked"])) for m in listed]
    assert mine == [(name, "2.0.0", True), (name, "1.0.0", False), (f"{name}-c", "1.0.0", False)]
    verified = wasmq("modules", "verify", name, f"{name}-c", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.splitlines() == [f"yanked {name}@2.0.0", f"ok   {name}@1.0.0", f"ok   {name}-c@1.0.0"]
