"""What happens to a refused message and to a job that failed for good (worker/queue/dead_lettering.py):
a bounded dead letter with the reason, the typed error as the job's result unless the id already has one,
the job counted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest
from celery.states import FAILURE, PENDING, SUCCESS

from tests.conftest import MANIFESTS
from tests.support.messages import call, greet, nested
from worker.config import Settings
from worker.errors import FuelExhausted, InvalidInput, MalformedMessage
from worker.keys import CALL_TASK
from worker.monitoring import stats
from worker.monitoring.recorder import Recorder
from worker.queue import state
from worker.queue.dead_lettering import raw_text, record_bad_envelope, record_failure, refuse
from worker.queue.dead_letters import DeadLetters
from worker.queue.intake import Verdict, inspect


class Backend:
    """The two calls `refuse` makes of a result backend."""

    def __init__(self, existing: dict[str, str] | None = None) -> None:
        self.status = dict(existing or {})
        self.stored: dict[str, Any] = {}

    def get_task_meta(self, task_id: str) -> dict[str, Any]:
        return {"status": self.status.get(task_id, PENDING)}

    def store_result(self, task_id: str, result: Any, status: str) -> None:
        self.stored[task_id] = (result, status)


@pytest.fixture
def dead(monkeypatch: pytest.MonkeyPatch) -> Iterator[DeadLetters]:
    settings = Settings(queue="q", manifests=MANIFESTS)
    client = fakeredis.FakeRedis()
    worker_state = state.WorkerState(settings, recorder=Recorder(settings, client=client, start=False))
    worker_state._dead_letters = DeadLetters(client, "q")
    monkeypatch.setattr(state, "_state", worker_state)
    yield worker_state._dead_letters


def counts(dead: DeadLetters, queue: str = "q") -> dict[tuple[str, str], stats.Counts]:
    recorder = state.current().recorder
    recorder.flush()
    return stats.read(dead.redis, queue).total


def test_a_refused_message_is_dead_lettered_answered_and_counted(dead: DeadLetters) -> None:
    raw = call(["greeting", "greet", "x"], {"bogus": 1}, argsrepr="A" * 100_000)
    message = raw.message()
    backend = Backend()
    entry_id = refuse(message, inspect(message, Settings()), backend)
    entry = dead.get(entry_id)
    assert entry_id == raw.id and entry is not None
    assert entry.reason == "malformed" and entry.error["type"] == "InvalidInput" and not entry.requeueable
    assert entry.task == CALL_TASK and entry.raw is not None and "bogus" in entry.raw
    assert entry.headers is not None and len(entry.headers["argsrepr"]) < 2000
    error, status = backend.stored[raw.id]
    assert isinstance(error, InvalidInput) and status == FAILURE
    assert counts(dead, "wasmq")[("greeting", "greet")].jobs == {"InvalidInput": 1}  # the queue it came from


def test_a_refusal_never_overwrites_a_result(dead: DeadLetters) -> None:
    raw = greet(job_id="taken")
    backend = Backend({"taken": SUCCESS})
    refuse(raw.message(), Verdict(error=MalformedMessage("x"), task=CALL_TASK, task_id="taken"), backend)
    assert backend.stored == {}
    refuse(raw.message(), Verdict(error=MalformedMessage("y"), task=CALL_TASK, task_id="free"), backend,
           store_result=False)  # fmt: skip
    assert backend.stored == {}
    assert dead.size() == 2


def test_a_huge_body_is_kept_cut_and_undecoded(dead: DeadLetters) -> None:
    text, cut = raw_text(b"\xff" * 50_000_000)
    assert cut and len(text) == 64 * 1024
    message = SimpleNamespace(body=b"[" * 10_000_000, headers={"task": nested(100_000)}, delivery_info={"x": 1})
    entry_id = refuse(message, Verdict(error=MalformedMessage("deep")), Backend())
    entry = dead.get(entry_id)
    assert entry is not None and entry.truncated and len(entry.to_json()) < 200_000


def test_a_bad_envelope_is_dead_lettered_and_counted(dead: DeadLetters) -> None:
    record_bad_envelope(b"\x00" * 1_000_000, "q", ValueError("not JSON"))
    (entry,) = dead.list()
    assert entry.reason == "malformed" and "not JSON" in entry.error["message"] and entry.truncated
    assert counts(dead)[("<unknown>", "<unknown>")].jobs == {"MalformedMessage": 1}


def test_a_failed_job_keeps_its_arguments_cut_short(dead: DeadLetters) -> None:
    request = SimpleNamespace(retries=2, delivery_info={"routing_key": "q"}, hostname="w@h")
    sender = SimpleNamespace(name=CALL_TASK, request=request)
    task_id = str(uuid.uuid4())
    record_failure(sender=sender, task_id=task_id, exception=FuelExhausted("out of fuel"),
                   args=["greeting", "greet", "x" * 100_000_000, None], kwargs={})  # fmt: skip
    entry = dead.get(task_id)
    assert entry is not None and entry.truncated and not entry.requeueable and entry.attempts == 3
    assert len(entry.to_json()) < 8 * 1024
    kept = str(uuid.uuid4())
    record_failure(sender=sender, task_id=kept, exception=FuelExhausted("x"), args=[], kwargs={
        "module": "greeting", "function": "greet", "input": "y"})  # fmt: skip
    entry = dead.get(kept)
    assert entry is not None and entry.requeueable and entry.kwargs == {"module": "greeting", "function": "greet",
                                                                       "input": "y"}  # fmt: skip
