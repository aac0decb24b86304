"""The greetings the big toolchains build answer through a real worker, alone and in batches, on every CI run.

Every toolchain module runs through a real worker: Rust and C (the seed manifest) in test_queue.py, the
AssemblyScript Extism plugin in test_extism.py, and here the components of componentize-py (modules/greeting_py,
with its WASI 0.2 imports stubbed and kept) and of jco (modules/greeting_js). Those are not in the seed manifest
(12 to 18 MB each), so each is published with `wasmq modules add`, whose bounded check compiles it once (13 to
16 s of CPU each on this project's 2-core machine, about 0.5 GB) and, with WASMQ_SHARED_ARTIFACTS=1, stores
the artifact, which a worker started with the same setting loads instead of compiling again (its first job of
each: about 0.4 s, fetching, verifying and deserializing 44 to 52 MB). The three publications run at once:
35 to 60 s of the CI run (measured, load average 2 to 4), the price of proving on every run that what these
toolchains make loads, answers (its memory metered) and serves batches in one instance per chunk. The
in-process tests of tests/sandbox/test_toolchain_components.py stay opt-in: they compile each again.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.workers import WorkerProcess
from worker.config import Settings
from worker.producer.client import Client
from worker.spec import MIB

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
WIT = ROOT / "modules" / "greeting_component" / "greeting.wit"
COMPONENTS = {  # name: (file, what `modules add` grants it)
    "py": (ROOT / "modules" / "greeting_py" / "greeting_py.wasm", ()),
    "py-wasi": (ROOT / "modules" / "greeting_py" / "greeting_py_wasi.wasm", ("--allow", "clock,random")),
    "js": (ROOT / "modules" / "greeting_js" / "greeting_js.wasm", ()),
}
NAMES = ["Alice", "", "Zoë 🌍", "李雷", "x" * 1000]
PAGE = 65536


def publish_all(run: str, env: dict[str, str]) -> dict[str, str]:
    """`wasmq modules add` for every component at once; their refs."""
    adds = {}
    for name, (path, grants) in COMPONENTS.items():
        ref = f"greeting-{name}-{run}"
        argv = [sys.executable, "-m", "worker.cli", "modules", "add", "--name", ref, "--version", "1.0.0",
                "--abi", "component", "--function", "greet:component", "--wit", str(WIT), "--world", "greeter",
                *grants, str(path)]  # fmt: skip
        adds[name] = (f"{ref}@1.0.0", subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for name, (ref, proc) in adds.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{name}: {err.decode()}"
        assert f"{ref} published" in out.decode()
    return {name: ref for name, (ref, _) in adds.items()}


@pytest.mark.timeout(900)
def test_toolchain_components_greet_through_a_real_worker(
    tmp_path: Path, worker_env: dict[str, str], redis_url: str, cache_dir: Path
) -> None:
    run, queue = uuid.uuid4().hex[:6], f"wasmq-toolchains-{uuid.uuid4().hex[:8]}"
    env = {**worker_env, "WASMQ_MANIFEST": "", "WASMQ_QUEUE": queue, "WASMQ_SHARED_ARTIFACTS": "1",
           "WASMQ_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
    refs = publish_all(run, env)
    settings = Settings(redis_url=redis_url, queue=queue, manifests=(), cache_dir=cache_dir)
    with Client(settings) as client:
        worker = WorkerProcess(env, log_dir=tmp_path, concurrency=1)
        worker.start(client)
        try:
            for name, ref in refs.items():
                outcome = client.submit(ref, "greet", "Zoë 🌍").outcome(timeout=120)
                assert outcome.output == "Hello World, Zoë 🌍!", (name, outcome.error)
                memory = outcome.usage["memory_bytes"]  # the interpreter's heap: megabytes, whole pages
                assert memory > MIB and memory % PAGE == 0, (name, outcome.usage)
                batch = client.map(ref, "greet", NAMES, chunk_size=3)
                assert [o.output for o in batch] == [f"Hello World, {n}!" for n in NAMES], name
            assert worker.alive()
        finally:
            worker.stop()
