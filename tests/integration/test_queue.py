"""Jobs through a real Redis and real worker processes (prefork pool, 2 processes)."""

from __future__ import annotations

import pytest
import redis

from tests.support.workers import WorkerProcess
from worker.errors import InvalidInput, ModuleNotFound
from worker.keys import CALL_MANY_TASK, CALL_TASK
from worker.producer.client import Client

pytestmark = pytest.mark.integration


def test_single_job_returns_greeting_with_worker_and_attempt(client: Client, worker: WorkerProcess) -> None:
    outcome = client.submit("greeting", "greet", "Alice").outcome(timeout=60)
    assert outcome.ok, outcome.error
    assert outcome.output == "Hello World, Alice!"
    assert outcome.meta["worker"] == worker.node
    assert outcome.meta["attempt"] == 1
    assert outcome.usage["fuel"] > 0 and outcome.usage["memory_bytes"] > 0


@pytest.mark.parametrize(
    ("module", "function"),
    [
        ("greeting", "greet"),
        ("greeting", "wasm_memory_rust_format_hello_world"),
        ("greeting", "wasm_memory_c_format_hello_world"),
        ("greeting-c", "greet"),
        ("greeting-c", "wasm_memory_c_format_hello_world"),
        ("greeting-component", "greet"),
    ],
)
def test_every_abi_gives_the_same_greeting(client: Client, worker: WorkerProcess, module: str, function: str) -> None:
    assert client.submit(module, function, "Zoë 🌍").get(timeout=60) == "Hello World, Zoë 🌍!"


def test_batch_of_2000_names_in_order(client: Client, worker: WorkerProcess) -> None:
    names = [f"name-{i}" for i in range(2000)]
    seen: list[tuple[int, int]] = []
    outcomes = client.map("greeting", "greet", names, chunk_size=100, progress=lambda d, t: seen.append((d, t)))
    assert [o.output for o in outcomes] == [f"Hello World, {n}!" for n in names]
    assert all(o.ok for o in outcomes)
    assert seen[0] == (0, 2000) and seen[-1] == (2000, 2000)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_three_languages_greet_identically_in_batches(client: Client, worker: WorkerProcess) -> None:
    names = ["Alice", "", "Zoë 🌍", "李雷", "x" * 1000]
    expected = [f"Hello World, {n}!" for n in names]
    for module in ("greeting", "greeting-c", "greeting-component"):  # Rust, C, a WAT-built component
        assert [o.output for o in client.map(module, "greet", names, chunk_size=2)] == expected, module


def test_a_wasi_component_greets_alone_and_in_batches(client: Client, worker: WorkerProcess) -> None:
    """modules/greeting_wasi imports WASI 0.2: linked with wasmtime's WASI host, one instance per chunk."""
    assert client.submit("greeting-wasi", "greet", "Zoë").get(timeout=60) == "Hello World, Zoë!"
    names = [f"n{i}" for i in range(30)]
    outcomes = client.map("greeting-wasi", "greet", names, chunk_size=10)
    assert [o.output for o in outcomes] == [f"Hello World, {n}!" for n in names]


def test_batch_without_batch_export_runs_item_by_item(client: Client, worker: WorkerProcess) -> None:
    names = ["a", "", "Ω"]
    outcomes = client.map("greeting", "wasm_memory_c_format_hello_world", names)
    assert [o.output for o in outcomes] == ["Hello World, a!", "Hello World, !", "Hello World, Ω!"]


HOSTILE = [
    ("loop-forever", "greet", "DeadlineExceeded"),
    ("start-loop", "greet", "DeadlineExceeded"),
    ("memory-grow", "greet", "MemoryLimitExceeded"),
    ("huge-memory", "greet", "MemoryLimitExceeded"),
    ("stack-overflow", "greet", "ModuleTrap"),
    ("trap", "greet", "ModuleTrap"),
    ("out-of-bounds", "greet", "InvalidOutput"),
    ("invalid-utf8", "greet", "InvalidOutput"),
    ("bad-alloc", "greet", "InvalidOutput"),
    ("forbidden-import", "greet", "ModuleRejected"),
    ("malformed", "greet", "ModuleRejected"),
    ("tampered", "greet", "ModuleRejected"),
    ("wasi-probe", "exit_now", "ModuleTrap"),
]


def test_hostile_jobs_fail_typed_and_workers_survive(client: Client, worker: WorkerProcess) -> None:
    pids_before = worker.pool_pids(client)
    jobs = []
    for module, function, expected in HOSTILE:
        jobs.append((client.submit(module, function, "Mallory"), expected))
        jobs.append((client.submit("greeting", "greet", "Alice"), None))
    for job, expected in jobs:
        outcome = job.outcome(timeout=120)
        if expected is None:
            assert outcome.output == "Hello World, Alice!"
        else:
            assert outcome.error is not None, f"{expected} job succeeded"
            assert outcome.error.type == expected, outcome.error.to_dict()
    assert worker.pool_pids(client) == pids_before
    assert worker.alive()


def test_hostile_items_inside_a_batch_fail_alone(client: Client, worker: WorkerProcess) -> None:
    outcomes = client.map("wasi-probe", "read_secret", ["/etc/passwd", "/etc/hostname"])
    assert all(o.ok and o.output and o.output.startswith("denied:") for o in outcomes)
    too_big = "x" * (1024 * 1024 + 1)
    mixed = client.map("greeting", "greet", ["ok", too_big, "fine"])
    assert [o.ok for o in mixed] == [True, False, True]
    assert mixed[1].error is not None and mixed[1].error.type == "InvalidInput"


def _queue_length(client: Client, redis_url: str) -> int:
    return int(redis.Redis.from_url(redis_url).llen(client.settings.queue))


def test_unknown_module_is_refused_before_enqueue(client: Client, redis_url: str) -> None:
    before = _queue_length(client, redis_url)
    with pytest.raises(ModuleNotFound, match="no module named 'nope'"):
        client.submit("nope", "greet", "x")
    with pytest.raises(ModuleNotFound, match="no version"):
        client.map("greeting@9.9.9", "greet", ["x"])
    with pytest.raises(InvalidInput, match="no function"):
        client.submit("greeting", "shout", "x")
    assert _queue_length(client, redis_url) == before


def test_limits_above_the_module_maximum_are_refused(client: Client, redis_url: str) -> None:
    before = _queue_length(client, redis_url)
    with pytest.raises(InvalidInput, match="above this module's maximum"):
        client.submit("greeting", "greet", "x", fuel=10**12)
    with pytest.raises(InvalidInput, match="above this module's maximum"):
        client.map("greeting", "greet", ["x"], timeout_ms=10**6)
    assert _queue_length(client, redis_url) == before


def test_lower_limits_apply_on_the_worker(client: Client, worker: WorkerProcess) -> None:
    outcome = client.submit("greeting", "greet", "Alice", fuel=50).outcome(timeout=60)
    assert outcome.error is not None and outcome.error.type == "FuelExhausted"
    assert client.submit("greeting", "greet", "Alice", fuel=100_000, timeout_ms=500).get(timeout=60)


def test_foreign_producer_with_wrong_arguments_gets_typed_error(client: Client, worker: WorkerProcess) -> None:
    cases = [
        (CALL_TASK, [123, "greet", "x", None]),
        (CALL_TASK, ["greeting", "greet", {"not": "text"}, None]),
        (CALL_TASK, ["greeting", "greet", "x", "fuel=1"]),
        (CALL_MANY_TASK, ["greeting", "greet", "not a list", None]),
    ]
    for name, args in cases:
        result = client.app.send_task(name, args=args, queue=client.settings.queue)
        value = result.get(timeout=60, propagate=False)
        assert type(value).__name__ == "InvalidInput", value
    assert client.submit("greeting", "greet", "after").get(timeout=60) == "Hello World, after!"
