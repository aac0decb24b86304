"""Hostile messages through real worker processes, on Redis and on RabbitMQ.

Every case of the hostile corpus (tests/support/messages.py) is pushed straight onto the queue, the way a
foreign producer could, followed by an ordinary job. For each: the ordinary job is served right after;
the hostile message gets its typed error as its result (when its id is a usable one) and a dead letter
with its reason, or runs (the control cases); the worker is alive with the same pool processes. Per-case
handling times and the worker's peak memory are reported (no timed assertions: the machine is noisy),
and the main process's peak memory stays bounded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Connection

from tests.integration.test_rabbitmq import amqp_url, rabbit_queues  # noqa: F401 (fixtures)
from tests.reliability.conftest import FIGURES, Scenario, build_scenario
from tests.support.messages import CORPUS, ENVELOPES, Case, Raw, deep_encoding, greet
from worker.keys import CALL_MANY_TASK, CALL_TASK
from worker.producer.client import Client
from worker.queue.dead_letters import DeadLetter
from worker.queue.intake import message_id

pytestmark = pytest.mark.reliability
PEAK_RSS_LIMIT_MB = 1024  # the worker's main process, after every case (its own baseline is about 100 MB)


@dataclass
class Broker:
    name: str
    scenario: Scenario
    send: Callable[[Raw], None]
    cases: list[Case]


def _redis_broker(sc: Scenario) -> Broker:
    r = redis.Redis.from_url(sc.settings.broker)
    return Broker("redis", sc, lambda raw: r.lpush(sc.settings.queue, raw.redis_entry(sc.settings.queue)),
                  CORPUS + ENVELOPES)  # fmt: skip


def _amqp_broker(sc: Scenario) -> Broker:
    def send(raw: Raw) -> None:
        with deep_encoding(), Connection(sc.settings.broker, connect_timeout=5) as conn:
            conn.Producer().publish(
                raw.body, exchange="", routing_key=sc.settings.queue, headers=raw.headers,
                content_type=raw.content_type, content_encoding=raw.content_encoding, retry=False,
            )  # fmt: skip

    return Broker("rabbitmq", sc, send, [c for c in CORPUS if c.amqp])


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest, redis_url: str, cache_dir: Path, tmp_path: Path) -> Iterator[Broker]:
    sc = build_scenario(f"hostile_messages_{request.param}", redis_url, cache_dir, tmp_path)
    if request.param == "rabbitmq":
        url = request.getfixturevalue("amqp_url")
        queues: list[str] = request.getfixturevalue("rabbit_queues")
        settings = sc.settings.with_(broker_url=url)
        queues.extend(settings.lanes)
        from tests.support.workers import env_for

        sc = Scenario(name=sc.name, settings=settings, env=env_for(settings), log_dir=tmp_path)
    try:
        yield _redis_broker(sc) if request.param == "redis" else _amqp_broker(sc)
    finally:
        for worker in sc.workers:
            worker.stop()
        sc.dead().purge()


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _stored(client: Client, task_id: str) -> dict[str, Any] | None:
    raw = client.app.backend.client.get(client.app.backend.get_key_for_task(task_id))
    return json.loads(raw) if raw else None


def _wait(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def _new_entry(dead: Any, seen: set[str]) -> DeadLetter | None:
    """The one dead letter not seen before (cases go one at a time, each waited for)."""
    return next((entry for entry in dead.list() if entry.id not in seen), None)


def test_every_hostile_message_is_refused_and_the_worker_keeps_serving(broker: Broker) -> None:
    sc = broker.scenario
    rows: list[tuple[str, str, float]] = []
    with sc.client() as client:
        worker = sc.start_worker(client)
        pids = worker.pool_pids(client)
        dead = sc.dead()
        seen: set[str] = set()
        for number, case in enumerate(broker.cases):
            raw = case.make()
            started = time.monotonic()
            try:
                broker.send(raw)
            except Exception as exc:
                raise AssertionError(f"could not send {case.name}: {exc}") from exc
            after = client.submit("greeting", "greet", f"after {number}")
            assert after.get(timeout=60) == f"Hello World, after {number}!", case.name
            usable = message_id(raw.headers) is not None
            if case.expect is None:
                meta = _wait(lambda raw=raw: _stored(client, raw.id), f"the result of {case.name}")
                assert meta["status"] == "SUCCESS", (case.name, meta)
                outcome = "ran"
            else:
                entry = _wait(lambda: _new_entry(dead, seen), f"the dead letter of {case.name}")
                seen.add(entry.id)
                if usable and not raw.envelope and raw.entry is None and case.stage != "transport":
                    assert entry.id == raw.id, case.name  # recorded under the message's own id
                assert entry.reason == "malformed" and entry.error["type"] == case.expect, (case.name, entry.error)
                assert case.reason in entry.error["message"], (case.name, entry.error["message"])
                if entry.id == raw.id:
                    meta = _wait(lambda raw=raw: _stored(client, raw.id), f"the typed error of {case.name}")
                    assert meta["status"] == "FAILURE" and meta["result"]["exc_type"] == case.expect, case.name
                outcome = entry.error["type"]
            rows.append((case.name, outcome, time.monotonic() - started))
            assert worker.alive(), f"the worker died on {case.name}:\n{worker.log_text()}"
        assert worker.pool_pids(client) == pids
        peak = _peak_rss_mb(worker.proc.pid) if worker.proc else 0.0
        refused = sum(1 for _, outcome, _ in rows if outcome != "ran")
        FIGURES.append({
            "scenario": f"hostile messages ({broker.name})", "submitted": len(rows) * 2, "completed": len(rows) * 2,
            "duplicated": 0, "lost": 0, "dead": refused, "redelivered": 0,
        })  # fmt: skip
        print(f"\nhostile messages on {broker.name}: {len(rows)} cases, worker main process peak RSS {peak:.0f} MB")
        for name, outcome, seconds in rows:
            print(f"  {name:45} {outcome:18} {seconds * 1000:8.0f} ms (with the job after it)")
        assert peak < PEAK_RSS_LIMIT_MB


def test_a_second_message_under_the_id_of_a_running_job_changes_nothing(broker: Broker) -> None:
    sc = broker.scenario
    with sc.client() as client:
        worker = sc.start_worker(client)
        # a chunk of calls that each run to their deadline, and twice again: seconds in flight
        slow = client.app.send_task(CALL_MANY_TASK, args=["loop-forever", "greet", list("abcdef"), None],
                                    queue=sc.settings.queue, time_limit=15, soft_time_limit=12)  # fmt: skip
        _wait(lambda: any(j["id"] == slow.id for w in _status(client) for j in w), "the slow job to start")
        broker.send(greet("impostor", job_id=slow.id))
        entry = _wait(lambda: next((e for e in sc.dead().list() if "already in flight" in e.error["message"]), None),
                      "the impostor's dead letter")  # fmt: skip
        assert entry.id.startswith(f"{slow.id}-duplicate-")  # an entry of its own: the job's id stays the job's
        result = slow.get(timeout=60)  # the real job's own result, not the impostor's
        assert [e["type"] for _, e in result["errors"]] == ["DeadlineExceeded"] * 6
        assert worker.alive()


def test_a_message_under_the_id_of_a_finished_job_does_not_replace_its_result(broker: Broker) -> None:
    sc = broker.scenario
    with sc.client() as client:
        sc.start_worker(client)
        first = client.submit("greeting", "greet", "first")
        assert first.get(timeout=60) == "Hello World, first!"
        broker.send(greet("second", job_id=first.id))
        assert client.submit("greeting", "greet", "later").get(timeout=60) == "Hello World, later!"
        meta = _stored(client, first.id)
        assert meta is not None and meta["result"]["output"] == "Hello World, first!"


def _status(client: Client) -> list[list[dict[str, Any]]]:
    replies = client.app.control.broadcast("wasmq_status", reply=True, timeout=0.5) or []
    return [
        answer["active"]
        for reply in replies
        for answer in reply.values()
        if isinstance(answer, dict) and "active" in answer  # a node of another app answers otherwise
    ]


def test_keyword_arguments_from_a_plain_celery_producer_run_and_are_counted(broker: Broker) -> None:
    sc = broker.scenario
    with sc.client() as client:
        sc.start_worker(client)
        job = client.app.send_task(CALL_TASK, kwargs={"module": "greeting", "function": "greet", "input": "kw"},
                                   queue=sc.settings.queue)  # fmt: skip
        assert job.get(timeout=60)["output"] == "Hello World, kw!"
        bad = client.app.send_task(CALL_TASK, args=["greeting", "greet"], kwargs={"inptu": "typo"},
                                   queue=sc.settings.queue)  # fmt: skip
        meta = _wait(lambda: (_stored(client, bad.id) or {}).get("status") == "FAILURE" and _stored(client, bad.id),
                     "the typo's typed error")  # fmt: skip
        assert (
            meta["result"]["exc_type"] == "InvalidInput" and "no argument 'inptu'" in meta["result"]["exc_message"][0]
        )

        def counted() -> Any:
            from worker.monitoring import stats

            with redis.Redis.from_url(sc.settings.redis_url) as r:
                total = stats.read(r, sc.settings.queue).total.get(("greeting", "greet"))
            return total if total and total.jobs.get("InvalidInput") and total.jobs.get("succeeded") else None

        totals = _wait(counted, "the counts of both jobs")
        assert totals.jobs == {"succeeded": 1, "InvalidInput": 1}
