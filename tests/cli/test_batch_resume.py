"""`wasmq batch` interrupted (SIGINT, SIGTERM, SIGKILL) and continued with `--resume`: exactly one row per
input, in order, each from a real worker; the rows already written are kept, only the rest is sent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.integration
LINES = 60_000


def _start(source: Path, out: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "batch", str(source), "--module", "greeting", "--function", "greet",
         "--out", str(out), "--chunk", "50", "--window", "4", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _rows_appear(out: Path, proc: subprocess.Popen[bytes], at_least: int = 500) -> None:
    """Wait until the batch has written some rows (and is still running)."""
    for _ in range(600):
        if out.exists() and out.stat().st_size > at_least * 60:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the batch wrote no rows")


def _check_rows(out: Path, names: list[str]) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["index"] for r in rows] == list(range(len(names)))
    assert [r["output"] for r in rows] == [f"Hello World, {n}!" for n in names]
    assert all(r["ok"] is True and r["worker"] and r["attempt"] == 1 for r in rows)
    return rows


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, list[str]]:
    names = [f"näme {i}" for i in range(LINES)]
    path = tmp_path / "names.txt"
    path.write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    return path, names


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_batch_resumes_to_exactly_one_row_per_input(
    worker_env: dict[str, str], worker: WorkerProcess, tmp_path: Path, source: tuple[Path, list[str]],
    sig: signal.Signals,
) -> None:  # fmt: skip
    path, names = source
    out = tmp_path / "out.jsonl"
    proc = _start(path, out, worker_env)
    _rows_appear(out, proc)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130, err.decode()
        assert b"continue with --resume" in err
        assert out.read_bytes().endswith(b"\n")  # flushed: whole rows only
    kept = out.read_bytes().count(b"\n")
    assert 0 < kept < LINES, "interrupt the batch while it runs"
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", "batch", str(path), "--module", "greeting", "--function", "greet",
         "--out", str(out), "--resume"],
        env=worker_env, capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    _check_rows(out, names)
    assert f"succeeded: {LINES - kept}" in done.stdout.decode()  # only the rest was run


def test_resume_refuses_another_batchs_output(
    worker_env: dict[str, str], worker: WorkerProcess, tmp_path: Path, source: tuple[Path, list[str]]
) -> None:
    path, _ = source
    out = tmp_path / "other.jsonl"
    out.write_text(json.dumps({"index": 0, "input": "someone else", "ok": True, "output": "x"}) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", "batch", str(path), "--module", "greeting", "--function", "greet",
         "--out", str(out), "--resume"],
        env=worker_env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and b"not this batch's output" in done.stderr
    assert b"Traceback" not in done.stderr
    assert json.loads(out.read_text())["input"] == "someone else"  # left as it was


def test_progress_off_a_terminal_is_plain_lines_with_rate_and_failures(
    worker_env: dict[str, str], worker: WorkerProcess, tmp_path: Path
) -> None:
    path = tmp_path / "few.txt"
    path.write_bytes(b"".join(f"n{i}\n".encode() for i in range(2000)) + b"\xff\n")
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", "batch", str(path), "--module", "greeting", "--function", "greet"],
        env=worker_env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1  # the last line is not UTF-8
    assert done.stdout.decode().count("\n") == 2001  # rows on stdout
    last = [line for line in done.stderr.decode().splitlines() if line.startswith("greeting.greet: ")][-1]
    assert "2001/2001 done (100%)" in last and "/s" in last and "1 failed" in last and "\x1b" not in last
