"""No password in any output: every `wasmq` command's error paths, against a real Redis that requires one.

A Redis started with `requirepass`; each command run with a wrong password, the right password for a user
that does not exist, a password with an unescaped `@`, one in the query string, and a Redis that is down;
stdout and stderr are searched for every password (as written and percent-encoded). A worker's log too
(Celery prints the broker and backend URLs in its banner), connected and failing to connect.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import MANIFESTS
from tests.support.sandbox import ROOT
from tests.support.workers import WorkerProcess
from worker.devtools.embedded_redis import EmbeddedRedis, free_port

pytestmark = pytest.mark.integration

SECRET = "Real-S3cret@with/odd%chars"  # the server's password
PASSWORDS = {
    "wrong password": "Wr0ng-pass-5e1",
    "wrong password with an @": "Wr0ng@at-5e2",
    "right password, unknown user": SECRET,
    "password in the query": "Query-pass-5e3",
    "redis down": "Down-pass-5e4",
}


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(password=SECRET) as redis_server:
        yield redis_server


def url_for(case: str, port: int, down_port: int) -> str:
    password = PASSWORDS[case]
    if case == "right password, unknown user":
        return f"redis://nobody:{quote(password, safe='')}@127.0.0.1:{port}/0"
    if case == "password in the query":
        return f"redis://127.0.0.1:{port}/0?password={password}"
    if case == "redis down":
        return f"redis://:{password}@127.0.0.1:{down_port}/0"
    return f"redis://:{password}@127.0.0.1:{port}/0"  # as users write it, '@' unescaped and all


def forbidden() -> set[str]:
    words = {SECRET, quote(SECRET, safe=""), *PASSWORDS.values(), *(quote(p, safe="") for p in PASSWORDS.values())}
    return words | {"at-5e2"}  # what a redaction that stopped at the first '@' would leave


def env_with(url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMQ_")}
    return {**env, "WASMQ_REDIS_URL": url, "WASMQ_MANIFEST": os.pathsep.join(map(str, MANIFESTS)),
            "WASMQ_CACHE_DIR": str(home / "cache"), "HOME": str(home)}  # fmt: skip


def commands(inputs: Path) -> list[list[str]]:
    return [
        ["run", "greeting", "greet", "--input", "x", "--wait-s", "5"],
        ["run", "greeting", "greet", "--input", "x", "--json", "--wait-s", "5"],
        ["batch", str(inputs), "--module", "greeting", "--function", "greet", "--wait-s", "5"],
        ["status"],
        ["status", "--json"],
        ["dead", "list"],
        ["dead", "list", "--json"],
        ["dead", "show", "some-id"],
        ["dead", "requeue", "--all"],
        ["dead", "purge"],
        ["modules", "list"],
        ["modules", "verify"],
        ["demo", "--count", "2"],
    ]


def run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "worker.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=240, check=False)  # fmt: skip
    return done.returncode, done.stdout + done.stderr


@pytest.mark.timeout(1800)
def test_no_command_prints_a_password(server: EmbeddedRedis, tmp_path: Path) -> None:
    inputs = tmp_path / "in.txt"
    inputs.write_text("a\nb\n")
    down = free_port()
    runs = []
    for case in PASSWORDS:
        every = case in ("wrong password", "wrong password with an @", "redis down")
        for args in commands(inputs):
            if every or args[0] in ("run", "status", "dead"):
                runs.append((case, args))
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda r: run(r[1], env_with(url_for(r[0], server.port, down), tmp_path)), runs))
    leaks = []
    for (case, args), (code, output) in zip(runs, results, strict=True):
        found = sorted(word for word in forbidden() if word in output)
        if found:
            leaks.append(f"{case}: wasmq {' '.join(args)} printed {found}:\n{output[-2000:]}")
        needs_redis = args[0] != "modules"
        if needs_redis:
            assert code != 0, f"{case}: wasmq {' '.join(args)} succeeded:\n{output[-2000:]}"
            assert "Traceback" not in output, output[-3000:]
    assert leaks == []
    shown = [output for (case, args), (_, output) in zip(runs, results, strict=True) if args == ["status"]]
    assert any("redis://:***@127.0.0.1" in output for output in shown)  # the URL is shown, its password not


def _worker_log(url: str, tmp_path: Path, name: str, client_url: str, wait_for: str) -> str:
    from worker.config import Settings
    from worker.producer.client import Client

    node = WorkerProcess(env_with(url, tmp_path), log_dir=tmp_path, concurrency=1, name=name)
    node.launch()
    try:
        deadline = time.monotonic() + 60
        with Client(Settings(redis_url=client_url, manifests=MANIFESTS)) as client:
            while time.monotonic() < deadline and wait_for not in node.log_text(limit=None):
                if wait_for == "ready" and client.app.control.ping(destination=[node.node], timeout=0.5):
                    break
                time.sleep(0.5)
    finally:
        node.stop()
    return node.log_text(limit=None)


def test_a_workers_log_shows_no_password(server: EmbeddedRedis, tmp_path: Path) -> None:
    connected = _worker_log(server.url, tmp_path, "connected", server.url, "ready")
    assert "ready." in connected and "redis://:**@127.0.0.1" in connected  # Celery's banner, masked
    refused = _worker_log(url_for("wrong password with an @", server.port, 1), tmp_path, "refused", server.url,
                          "Cannot connect")  # fmt: skip
    assert "Cannot connect" in refused
    for log in (connected, refused):
        assert sorted(word for word in forbidden() if word in log) == []
