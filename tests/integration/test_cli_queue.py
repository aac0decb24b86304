"""`wasmq run`, `wasmq batch` and `wasmq demo` as a user runs them: real processes, real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.integration


def wasmq(
    *args: str, env: dict[str, str], stdin: bytes | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        check=False,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=timeout,
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def test_run_prints_the_greeting(worker_env: dict[str, str], worker: WorkerProcess) -> None:
    done = wasmq("run", "greeting", "greet", "--input", "Alice", env=worker_env)
    assert (done.returncode, done.stdout) == (0, "Hello World, Alice!\n"), done.stderr
    done = wasmq("run", "greeting", "greet", "--input", "Alice", "--json", env=worker_env)
    body = json.loads(done.stdout)
    assert body["ok"] is True and body["output"] == "Hello World, Alice!" and body["usage"]["fuel"] > 0


def test_run_reports_module_failures_and_usage_errors(worker_env: dict[str, str], worker: WorkerProcess) -> None:
    done = wasmq("run", "trap", "greet", "--input", "x", "--json", env=worker_env)
    assert done.returncode == 1
    error = json.loads(done.stdout)["error"]
    assert error["type"] == "ModuleTrap" and error["retryable"] is False
    done = wasmq("run", "nope", "greet", "--input", "x", "--json", env=worker_env)
    assert done.returncode == 1 and json.loads(done.stdout)["error"]["type"] == "ModuleNotFound"
    done = wasmq("run", "greeting", env=worker_env)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_batch_writes_json_lines_in_order_with_a_summary(
    worker_env: dict[str, str], worker: WorkerProcess, tmp_path: Path
) -> None:
    names = [f"person {i}" for i in range(300)] + ["x" * (1024 * 1024 + 1)]
    source = tmp_path / "names.txt"
    source.write_bytes("\n".join(names).encode() + b"\n\xff\xfe\n")
    out = tmp_path / "results.jsonl"
    done = wasmq("batch", str(source), "--module", "greeting", "--function", "greet", "--out", str(out),
                 "--chunk", "50", env=worker_env)  # fmt: skip
    assert done.returncode == 1, done.stderr  # two inputs fail: one too large, one not UTF-8
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["index"] for line in lines] == list(range(302))
    assert [line["output"] for line in lines[:300]] == [f"Hello World, {n}!" for n in names[:300]]
    assert lines[300]["error"]["type"] == "InvalidInput" and "over the limit" in lines[300]["error"]["message"]
    assert lines[301]["error"]["type"] == "InvalidInput" and "line 302" in lines[301]["error"]["message"]
    assert "succeeded: 300" in done.stdout and "InvalidInput: 2" in done.stdout and "jobs/s" in done.stdout


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_demo_brings_its_own_redis_and_cleans_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMQ_")}
    env["WASMQ_CACHE_DIR"] = str(tmp_path / "cache")
    env["TMPDIR"] = str(tmp_path)
    done = wasmq("demo", "--count", "300", env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "started an embedded Redis at redis://127.0.0.1:" in done.stdout
    assert "greet('Alice') -> Hello World, Alice!" in done.stdout
    assert "succeeded: 300" in done.stdout
    url = done.stdout.split("started an embedded Redis at ")[1].split()[0]
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    node = done.stdout.split("worker ready: ")[1].split()[0]
    assert not [pid for pid in processes_mentioning(node.split("@")[0])], "the demo left worker processes behind"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(("wasmq-redis-", "wasmq-demo-"))]
    assert leftovers == []
