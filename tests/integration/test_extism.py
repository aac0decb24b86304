"""The extism ABI on a real worker: the seeded Extism plugin (greeting-extism@1.0.0, with the manifest's config)
served one job at a time and in batches, the plugin's own error typed, and a plugin published with
`wasmq modules add --abi extism --config` served by the same worker without a restart."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.integration.test_publish import served, wasmq
from tests.support.workers import WorkerProcess
from worker.errors import ModuleTrap
from worker.producer.client import Client

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "modules" / "greeting_extism" / "greeting_extism.wasm"
SEEDED = "Hello Extism"  # modules/manifest.json: greeting-extism@1.0.0's config `greeting`


def test_the_seeded_plugin_greets_fails_typed_and_the_worker_lives(client: Client, worker: WorkerProcess) -> None:
    assert client.submit("greeting-extism", "greet", "Zoë").get(timeout=60) == f"{SEEDED}, Zoë!"
    names = ["Alice", "", "Zoë 🌍", "李雷", "x" * 1000]
    outcomes = client.map("greeting-extism", "greet", names, chunk_size=2)
    assert [o.output for o in outcomes] == [None if not n else f"{SEEDED}, {n}!" for n in names]
    failed = outcomes[1]
    assert isinstance(failed.error, ModuleTrap) and failed.error.details["trap_code"] == "plugin_error"
    assert failed.error.message == "plugin error: greet: the name must not be empty"
    with pytest.raises(ModuleTrap, match="the name must not be empty"):
        client.submit("greeting-extism", "greet", "").get(timeout=60)
    assert worker.alive()
    assert client.submit("greeting-extism@1.0.0", "greet", "again").get(timeout=60) == f"{SEEDED}, again!"
    logged = [line for line in worker.log_text(None).splitlines() if "greeting 3 UTF-16 units" in line]
    assert logged and all("wasmq.plugin" in line and "greeting-extism@1.0.0" in line for line in logged), logged


def test_publish_with_config_show_and_serve(worker_env: dict[str, str], client: Client, worker: WorkerProcess) -> None:
    name = f"extism-{uuid.uuid4().hex[:6]}"
    add = ("modules", "add", "--name", name, "--abi", "extism", "--function", "greet", str(PLUGIN))
    done = wasmq(*add, "--version", "1.0.0", "--config", "greeting=Hi", env=worker_env)
    assert done.returncode == 0, done.stderr
    assert f"{name}@1.0.0 published" in done.stdout
    again = wasmq(*add, "--version", "1.0.0", "--config", "greeting=Hi", env=worker_env)
    assert again.returncode == 0 and "already published (identical)" in again.stdout
    other = wasmq(*add, "--version", "1.0.0", "--config", "greeting=Ciao", env=worker_env)
    assert other.returncode == 1 and "PublishConflict" in other.stderr
    assert "config: greeting=Hi there, greeting=Ciao here" in other.stderr
    wrong = wasmq(*add, "--version", "2.0.0", "--config", "greeting", env=worker_env)
    assert wrong.returncode != 0 and "KEY=VALUE" in wrong.stderr
    shown = wasmq("modules", "show", f"{name}@1.0.0", "--json", env=worker_env)
    assert shown.returncode == 0, shown.stderr
    row = json.loads(shown.stdout)
    assert (row["abi"], row["functions"], row["config"]) == ("extism", {"greet": "extism"}, {"greeting": "Hi"})
    text = wasmq("modules", "show", f"{name}@1.0.0", env=worker_env)
    assert "greeting=Hi" in text.stdout
    assert served(client, f"{name}@1.0.0", "greet", "Zoë") == "Hi, Zoë!"
    assert worker.alive()
