"""Publishing modules with `wasmq modules add`: checked before they land, immutable per version, and served
by running workers without a restart; a job may pin `name@version`, an unpinned job gets the newest."""

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
from worker.producer.client import Client

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
GREETING_C = ROOT / "modules" / "greeting_c" / "greeting_c.wasm"
HOSTILE = ROOT / "tests" / "corpora" / "hostile"


def wasmq(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args], env=env, capture_output=True, text=True, check=False, timeout=120
    )


def test_publish_verify_and_serve_without_restart(
    tmp_path: Path, worker_env: dict[str, str], redis_url: str, cache_dir: Path
) -> None:
    manifest = tmp_path / "manifest.json"
    queue = f"wasmq-pub-{uuid.uuid4().hex[:8]}"
    env = {**worker_env, "WASMQ_MANIFEST": str(manifest), "WASMQ_QUEUE": queue}
    add = ("modules", "add", "--name", "hello", "--abi", "packed", "--function", "greet")

    done = wasmq(*add, "--version", "1.0.0", "--batch", "greet=greet_many", str(GREETING_C), env=env)
    assert done.returncode == 0, done.stderr
    assert "hello@1.0.0 published" in done.stdout
    entry = json.loads(manifest.read_text())["modules"][0]
    assert (manifest.parent / entry["file"]).read_bytes() == GREETING_C.read_bytes()

    again = wasmq(*add, "--version", "1.0.0", str(GREETING_C), env=env)
    assert again.returncode == 0 and "already published" in again.stdout
    clash = wasmq(*add, "--version", "1.0.0", str(HOSTILE / "good_wat.wasm"), env=env)
    assert clash.returncode == 1 and "already published with sha256" in clash.stderr
    rejected = wasmq(*add, "--version", "9.0.0", str(HOSTILE / "missing_export.wasm"), env=env)
    assert rejected.returncode == 1 and "ModuleRejected" in rejected.stderr and "greet" in rejected.stderr
    assert [m["version"] for m in json.loads(manifest.read_text())["modules"]] == ["1.0.0"]

    settings = Settings(redis_url=redis_url, queue=queue, manifests=(manifest,), cache_dir=cache_dir)
    with Client(settings) as client:
        worker = WorkerProcess(env, log_dir=tmp_path, concurrency=1)
        worker.start(client)
        try:
            assert client.submit("hello", "greet", "v1").get(timeout=60) == "Hello World, v1!"
            # Version 2 answers bytes that are not UTF-8: easy to tell apart from version 1.
            done = wasmq(*add, "--version", "2.0.0", str(HOSTILE / "invalid_utf8.wasm"), env=env)
            assert done.returncode == 0, done.stderr
            time.sleep(1.2)  # catalogs look at their manifests at most once a second
            newest = client.submit("hello", "greet", "v2").outcome(timeout=60)
            assert newest.error is not None and newest.error.type == "InvalidOutput"
            assert client.submit("hello@1.0.0", "greet", "pinned").get(timeout=60) == "Hello World, pinned!"
            assert worker.alive()
        finally:
            worker.stop()
    component = ROOT / "modules" / "greeting_component"
    comp = ("modules", "add", "--name", "hello-c", "--abi", "component", "--function", "greet", "--world", "greeter")
    done = wasmq(*comp, "--version", "1.0.0", "--wit", str(component / "greeting.wit"),
                 str(component / "greeting_component.wasm"), env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    bad = wasmq(*comp, "--version", "2.0.0", "--wit", str(component / "greeting.wit"),
                str(ROOT / "tests" / "corpora" / "hostile_components" / "wrong_signature.wasm"), env=env)  # fmt: skip
    assert bad.returncode == 1 and "func(u32) -> u32" in bad.stderr
    called = wasmq("call", "hello-c", "greet", "--input", "component", env=env)
    assert called.stdout == "Hello World, component!\n", called.stderr
    env_listed = [m for m in json.loads(manifest.read_text())["modules"] if m["name"] == "hello"]
    manifest.write_text(json.dumps({"modules": env_listed}))  # the listing below is about `hello`
    listed = json.loads(wasmq("modules", "list", "--json", env=env).stdout)
    assert [(m["name"], m["version"]) for m in listed["modules"]] == [("hello", "2.0.0"), ("hello", "1.0.0")]
    verified = wasmq("modules", "verify", env=env)
    assert verified.returncode == 0 and verified.stdout.count("ok ") == 2
