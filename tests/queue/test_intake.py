"""The intake bounds (worker/queue/intake.py) on kombu messages, as a consumer of any broker receives them:
every case of the hostile corpus (tests/support/messages.py) gets its typed error and reason, and nothing
a producer sends makes `inspect` raise."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kombu.message import Message

from tests.support.messages import CORPUS, Case, call, greet, nested
from worker.config import Settings
from worker.errors import InvalidInput, MalformedMessage
from worker.keys import CALL_MANY_TASK
from worker.queue import compression
from worker.queue.intake import MAX_REPR_CHARS, inspect

SETTINGS = Settings()


@pytest.fixture(autouse=True)
def bounded_decompression() -> None:
    compression.install(SETTINGS.max_message_bytes)  # as the worker's app does


def _id(case: Case) -> str:
    return case.name


@pytest.mark.parametrize("case", [c for c in CORPUS if c.stage in ("intake", "transport")], ids=_id)
def test_every_message_of_the_corpus_gets_its_verdict(case: Case) -> None:
    verdict = inspect(case.make().message(), SETTINGS)
    if case.expect is None:
        assert verdict.error is None, verdict.error
        assert verdict.call is not None
        return
    assert verdict.call is None
    assert verdict.error is not None and verdict.error.type == case.expect, verdict.error
    assert case.reason in verdict.error.message
    assert len(verdict.error.message) <= 1000


@pytest.mark.parametrize("case", [c for c in CORPUS if c.stage == "kombu"], ids=_id)
def test_what_kombu_cannot_decompress_is_an_error_of_the_message_itself(case: Case) -> None:
    message = case.make().message()
    assert message.errors  # kombu's consumer hands these to on_decode_error (worker/queue/consumer.py)
    if "bomb" in case.name:
        assert isinstance(message.errors[0][1], MalformedMessage)
        assert "decompresses to more than" in str(message.errors[0][1])
        assert len(message.body) < 1024 * 1024  # the compressed bytes: nothing was inflated


def test_an_eta_celery_cannot_read_passes_the_intake_and_is_refused_by_celery() -> None:
    (case,) = [c for c in CORPUS if c.stage == "celery"]
    assert inspect(case.make().message(), SETTINGS).error is None  # see tests/queue/test_consumer.py


def test_a_verdict_knows_the_job_even_when_its_arguments_are_wrong() -> None:
    raw = call([], {"module": "greeting", "function": "greet", "inputs": ["a", "b", "c"], "x": 1}, task=CALL_MANY_TASK)
    verdict = inspect(raw.message(), SETTINGS)
    assert isinstance(verdict.error, InvalidInput)
    assert (verdict.task, verdict.task_id) == (CALL_MANY_TASK, raw.id)
    assert (verdict.module, verdict.function, verdict.items) == ("greeting", "greet", 3)


def test_display_headers_are_cut_in_place() -> None:
    message = greet(argsrepr="A" * 100_000, kwargsrepr="K" * 2000).message()
    assert inspect(message, SETTINGS).error is None
    assert len(message.headers["argsrepr"]) == MAX_REPR_CHARS + 3
    assert message.headers["kwargsrepr"].endswith("...")


def test_the_body_is_decoded_once_for_celery_to_reuse() -> None:
    message = greet("once").message()
    assert inspect(message, SETTINGS).call is not None
    assert message.payload[0] == ["greeting", "greet", "once", None]  # kombu's memoized decode


def test_headers_that_are_no_object_are_refused() -> None:
    message = SimpleNamespace(headers=["task", "wasmq.call"], body=b"[]", content_type="application/json")
    verdict = inspect(message, SETTINGS)
    assert verdict.error is not None and "headers must be an object, not list" in verdict.error.message


def test_the_message_limit_is_a_setting() -> None:
    small = Settings(max_message_bytes=64 * 1024)
    verdict = inspect(greet("x" * 70_000).message(), small)
    assert verdict.error is not None and "above the message limit of 65536 bytes" in verdict.error.message
    assert inspect(greet("x" * 60_000).message(), small).error is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


HEADER_NAMES = st.sampled_from(["task", "id", "retries", "timelimit", "eta", "argsrepr", "stamps", "shadow"])


@settings(max_examples=300, deadline=None)
@given(
    headers=st.one_of(
        st.none(), st.dictionaries(st.text(max_size=8), json_values), st.dictionaries(HEADER_NAMES, json_values)
    ),
    body=st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())),
    content_type=st.sampled_from(["application/json", "application/x-yaml", None, "text/plain"]),
)
def test_nothing_a_producer_sends_makes_the_intake_raise(headers: Any, body: bytes, content_type: Any) -> None:
    """Headers are an object or none: what every transport delivers (kombu itself breaks on anything else, and
    the Redis transport refuses it first, worker/queue/transport.py)."""
    if isinstance(headers, dict):
        headers.setdefault("task", "wasmq.call")
    message = Message(body=body, content_type=content_type, content_encoding="utf-8", headers=headers,
                      accept=["application/json"])  # fmt: skip
    verdict = inspect(message, SETTINGS)
    assert (verdict.call is None) != (verdict.error is None)
    if verdict.error is not None:
        assert verdict.error.type in ("MalformedMessage", "InvalidInput")


def test_a_message_without_argsrepr_gets_a_short_one() -> None:
    """Celery logs and sends repr(args) whole (and recursively) when a foreign producer sent none."""
    message = call(["greeting", "greet", "x" * 1_000_000], argsrepr=None, kwargsrepr="").message()
    assert inspect(message, SETTINGS).error is None
    assert message.headers["argsrepr"].startswith("['greeting', 'greet', 'xxx")
    assert len(message.headers["argsrepr"]) <= MAX_REPR_CHARS and message.headers["kwargsrepr"] == "{}"


def test_what_a_broker_adds_under_x_names_may_hold_timestamps() -> None:
    """RabbitMQ's x-death header (a message dead-lettered by the broker and sent back) holds timestamps."""
    death = [{"count": 1, "reason": "rejected", "queue": "wasmq", "time": datetime(2026, 1, 1, tzinfo=UTC)}]
    assert inspect(greet(**{"x-death": death}).message(), SETTINGS).error is None
    verdict = inspect(greet(stamps={"when": datetime(2026, 1, 1, tzinfo=UTC)}).message(), SETTINGS)
    assert verdict.error is not None and "is a datetime, not a JSON value" in verdict.error.message
    verdict = inspect(greet(**{"x-deep": nested(50)}).message(), SETTINGS)
    assert verdict.error is not None and "nested deeper" in verdict.error.message
