"""Task messages as any producer could send them, and the hostile corpus: one place for the unit tests of the
intake (kombu `Message`s), the hostile-message suites (Redis envelopes, AMQP publishes) and the contract tests.

A `Raw` message is what a broker carries: headers, the body's bytes, content type and encoding. Each hostile
`Case` builds one and says what the worker must make of it: the error type and a part of its reason, or
`None` for a message that must run (the control cases, so that the corpus also shows what still passes).
"""

from __future__ import annotations

import base64
import bz2
import functools
import json
import lzma
import sys
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from kombu.message import Message

from worker.keys import CALL_MANY_TASK, CALL_TASK

EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
MALFORMED, INVALID = "MalformedMessage", "InvalidInput"


@dataclass(frozen=True)
class Raw:
    """A message as a broker carries it."""

    headers: Any
    body: bytes
    content_type: str | None = "application/json"
    content_encoding: str | None = "utf-8"
    envelope: dict[str, Any] = field(default_factory=dict)  # Redis envelope fields to override (None: drop)
    entry: bytes | None = None  # a whole Redis queue entry instead of an envelope (not a message at all)

    @property
    def id(self) -> Any:
        return self.headers.get("id") if isinstance(self.headers, dict) else None

    def message(self) -> Message:
        """A kombu `Message`, as a consumer of any transport receives it."""
        return Message(
            body=self.body,
            content_type=self.content_type,
            content_encoding=self.content_encoding,
            headers=self.headers,
            delivery_info={"routing_key": "wasmq"},
            accept=["application/json"],
            delivery_tag=str(uuid.uuid4()),
        )

    def redis_entry(self, queue: str) -> bytes:
        """The JSON entry kombu's Redis transport would push for this message (base64 body)."""
        if self.entry is not None:
            return self.entry
        envelope: dict[str, Any] = {
            "body": base64.b64encode(self.body).decode(),
            "content-encoding": self.content_encoding,
            "content-type": self.content_type,
            "headers": self.headers,
            "properties": {
                "correlation_id": self.id if isinstance(self.id, str) else "x",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        for path, value in self.envelope.items():
            target = envelope
            *parents, last = path.split(".")
            for part in parents:
                target = target[part]
            if value is None:
                target.pop(last, None)
            else:
                target[last] = value
        with deep_encoding():
            return json.dumps(envelope).encode()


@contextmanager
def deep_encoding() -> Iterator[None]:
    """Encoders (json, py-amqp) are recursive: a hostile client need not be, so ours may go deep here."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def headers(task: Any = CALL_TASK, job_id: Any = None, **more: Any) -> dict[str, Any]:
    """Celery protocol 2 headers as Celery 5 sends them."""
    job_id = str(uuid.uuid4()) if job_id is None else job_id
    base = {
        "lang": "py",
        "task": task,
        "id": job_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [60, 45],
        "root_id": job_id,
        "parent_id": None,
        "argsrepr": "(...)",
        "kwargsrepr": "{}",
        "origin": "gen1@test",
        "ignore_result": False,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    base.update(more)
    return {k: v for k, v in base.items() if v is not ...}


def call(args: Any, kwargs: Any = None, embed: Any = EMBED, *, task: Any = CALL_TASK, **head: Any) -> Raw:
    body = [args, {} if kwargs is None else kwargs, embed]
    return Raw(headers(task, **head), json.dumps(body).encode())


def greet(text: str = "hostile-neighbour", **head: Any) -> Raw:
    return call(["greeting", "greet", text, None], **head)


def nested(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def compressed(raw: Raw, name: str, data: bytes) -> Raw:
    return replace(raw, body=data, headers={**raw.headers, "compression": name})


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], Raw]
    expect: str | None  # error type, or None: the message runs and succeeds
    reason: str = ""  # a part of the refusal's message
    # who refuses it: the intake, kombu (decompression), Celery (an eta it cannot read) or the transport (headers
    # it cannot even decode)
    stage: str = "intake"
    amqp: bool = True  # whether an AMQP broker can carry it at all (its headers must fit in one frame)


@functools.cache
def _bomb_bytes(name: str) -> bytes:
    """40 MiB of JSON whitespace, compressed to a few KB or less."""
    data = b"[" + b" " * (40 * 1024 * 1024) + b"]"
    return {"zlib": zlib.compress, "bzip2": bz2.compress, "xz": lzma.compress}[name](data)


def _bomb(name: str) -> Callable[[], Raw]:
    return lambda: compressed(greet(), name, _bomb_bytes(name))


CORPUS: list[Case] = [
    # control cases: these must run
    Case("plain call", lambda: greet("control"), None),
    Case("arguments by name", lambda: call([], {"module": "greeting", "function": "greet", "input": "kw"}), None),
    Case("some in order, some by name", lambda: call(["greeting"], {"function": "greet", "input": "mix"}), None),
    Case(
        "chunk by name",
        lambda: call([], {"module": "greeting", "function": "greet", "inputs": ["a", "b"]}, task=CALL_MANY_TASK),
        None,
    ),
    Case("huge argsrepr is cut, not refused", lambda: greet(argsrepr="A" * 5_000_000), None, amqp=False),
    Case("zlib-compressed body", lambda: compressed(greet(), "zlib", zlib.compress(greet().body)), None),
    # nesting
    Case("args nested 700 deep", lambda: call(["greeting", "greet", nested(700), None]), MALFORMED, "nested deeper"),
    Case(
        "JSON nested 100k deep",
        lambda: replace(greet(), body=b"[[" + b"[" * 100_000 + b"]" * 100_000 + b"],{},{}]"),
        MALFORMED,
        "not JSON",
    ),
    Case(
        "kwargs nested deep",
        lambda: call(["greeting", "greet", "x"], {"limits": nested(50, {})}),
        MALFORMED,
        "nested deeper",
    ),
    Case("headers nested deep", lambda: greet(stamps={"s": nested(700)}), MALFORMED, "headers['stamps']"),
    Case("headers nested 5000 deep", lambda: greet(stamps={"s": nested(5000)}), MALFORMED, "", "transport"),
    Case(
        "embed nested deep",
        lambda: call(["greeting", "greet", "x"], embed={"callbacks": nested(700)}),
        MALFORMED,
        "nested deeper",
    ),
    Case(
        "chunk item nested deep",
        lambda: call(["greeting", "greet", ["ok", nested(50)]], task=CALL_MANY_TASK),
        MALFORMED,
        "nested deeper",
    ),
    # sizes and counts
    Case("input of 17 MiB", lambda: greet("x" * (17 * 1024 * 1024)), MALFORMED, "above the message limit"),
    Case("module name of 1 MB", lambda: call(["m" * 1_000_000, "greet", "x"]), INVALID, "'module' is 1000000"),
    Case("header string of 10 KB", lambda: greet(origin="o" * 10_000), MALFORMED, "4096"),
    Case("headers with 10k keys", lambda: greet(**{f"x-{i}": i for i in range(10_000)}), MALFORMED, "512 values"),
    Case(
        "chunk of 10001 inputs",
        lambda: call(["greeting", "greet", ["a"] * 10_001], task=CALL_MANY_TASK),
        INVALID,
        "at most 10000",
    ),
    Case(
        "body of 100k numbers",
        lambda: call(["greeting", "greet", "x", {"fuel": 1}, *range(100_000)]),
        MALFORMED,
        "holds more than",
    ),
    # compression
    Case("zlib bomb", _bomb("zlib"), MALFORMED, "decompresses to more than", "kombu"),
    Case("bzip2 bomb", _bomb("bzip2"), MALFORMED, "decompresses to more than", "kombu"),
    Case("lzma bomb", _bomb("xz"), MALFORMED, "decompresses to more than", "kombu"),
    Case(
        "unknown compression",
        lambda: compressed(greet(), "application/x-snappy", b"\x00\x01"),
        MALFORMED,
        "cannot be decoded",
        "kombu",
    ),
    Case(
        "zlib header, body not zlib",
        lambda: compressed(greet(), "zlib", b"not zlib at all"),
        MALFORMED,
        "cannot be decoded",
        "kombu",
    ),
    # encodings and content types
    Case("body not JSON", lambda: replace(greet(), body=b"{not json"), MALFORMED, "not JSON"),
    Case(
        "body not UTF-8",
        lambda: replace(greet(), body=b'[["greeting","greet","\xff\xfe",null],{},{}]'),
        MALFORMED,
        "not JSON",
    ),
    Case("body empty", lambda: replace(greet(), body=b""), MALFORMED, ""),
    Case("body is null", lambda: replace(greet(), body=b"null"), MALFORMED, "[args, kwargs, embed]"),
    Case(
        "body is an object (protocol 1 style)",
        lambda: replace(greet(), body=b'{"args": [], "kwargs": {}}'),
        MALFORMED,
        "[args, kwargs, embed]",
    ),
    Case(
        "body has two parts",
        lambda: replace(greet(), body=b'[["greeting","greet","x"],{}]'),
        MALFORMED,
        "not a list of 2",
    ),
    Case(
        "pickle content type",
        lambda: replace(
            greet(),
            body=b"\x80\x04\x95pickle",
            content_type="application/x-python-serialize",
            content_encoding="binary",
        ),
        MALFORMED,
        "content type",
    ),
    Case("yaml content type", lambda: replace(greet(), content_type="application/x-yaml"), MALFORMED, "content type"),
    Case("no content type", lambda: replace(greet(), content_type=None), MALFORMED, "content type"),
    Case("latin-1 content encoding", lambda: replace(greet(), content_encoding="latin-1"), MALFORMED, "encoding"),
    # tasks and protocol
    Case("unknown task", lambda: greet(task="wasmq.nope"), MALFORMED, "not a wasmq task"),
    Case("Celery's own task", lambda: call([], task="celery.backend_cleanup"), MALFORMED, "not a wasmq task"),
    Case("task name not a string", lambda: greet(task=["wasmq.call"]), MALFORMED, "not a wasmq task"),
    Case(
        "protocol 1 message",
        lambda: Raw({}, json.dumps({"task": CALL_TASK, "id": "p1", "args": []}).encode()),
        MALFORMED,
        "protocol 2",
    ),
    Case(
        "callbacks",
        lambda: call(["greeting", "greet", "x"], embed={**EMBED, "callbacks": [{"task": "x"}]}),
        MALFORMED,
        "may name only wasmq tasks",
    ),
    Case(
        "chain",
        lambda: call(["greeting", "greet", "x"], embed={**EMBED, "chain": [{"task": "x"}]}),
        MALFORMED,
        "may name only wasmq tasks",
    ),
    Case(
        "chord",
        lambda: call(["greeting", "greet", "x"], embed={**EMBED, "chord": {"task": "x"}}),
        MALFORMED,
        "may name only wasmq tasks",
    ),
    Case(
        "chain of non-signatures",
        lambda: call(["greeting", "greet", "x"], embed={**EMBED, "chain": ["wasmq.call"]}),
        MALFORMED,
        "task signatures",
    ),
    Case("embed not an object", lambda: call(["greeting", "greet", "x"], embed=[1]), MALFORMED, "embed"),
    # wrong types, header by header
    Case("id a list", lambda: greet(job_id=["x"]), MALFORMED, "'id'"),
    Case("id empty", lambda: greet(job_id=""), MALFORMED, "'id'"),
    Case("id of 1000 characters", lambda: greet(job_id="i" * 1000), MALFORMED, "'id'"),
    Case("id with a newline", lambda: greet(job_id="evil\nid"), MALFORMED, "'id'"),
    Case("retries a string", lambda: greet(retries="many"), MALFORMED, "'retries'"),
    Case("retries negative", lambda: greet(retries=-1), MALFORMED, "'retries'"),
    Case("timelimit a string", lambda: greet(timelimit="nope"), MALFORMED, "'timelimit'"),
    Case("timelimit negative", lambda: greet(timelimit=[-1, 5]), MALFORMED, "'timelimit'"),
    Case("timelimit of one", lambda: greet(timelimit=[5]), MALFORMED, "'timelimit'"),
    Case("eta a list", lambda: greet(eta=[1]), MALFORMED, "'eta'"),
    Case("eta not a date", lambda: greet(eta="not a date"), MALFORMED, "invalid", "celery"),
    Case("expires a number", lambda: greet(expires=5), MALFORMED, "'expires'"),
    Case("group_index a string", lambda: greet(group_index="1"), MALFORMED, "'group_index'"),
    Case("stamps a list", lambda: greet(stamps=[1]), MALFORMED, "'stamps'"),
    Case("argsrepr an object", lambda: greet(argsrepr={"a": 1}), MALFORMED, "'argsrepr'"),
    Case("shadow a number", lambda: greet(shadow=1), MALFORMED, "'shadow'"),
    # wrong arguments
    Case("args not a list", lambda: call("greeting"), INVALID, "must be a list"),
    Case("kwargs not an object", lambda: call(["greeting", "greet", "x"], [1, 2]), INVALID, "must be an object"),
    Case("no arguments", lambda: call([]), INVALID, "missing argument 'module', 'function', 'input'"),
    Case("two arguments", lambda: call(["greeting", "greet"]), INVALID, "missing argument 'input'"),
    Case("five arguments", lambda: call(["greeting", "greet", "x", None, 1]), INVALID, "at most 4 arguments"),
    Case("unknown keyword", lambda: call(["greeting", "greet", "x"], {"bogus": 1}), INVALID, "no argument 'bogus'"),
    Case("argument twice", lambda: call(["greeting", "greet", "x"], {"input": "y"}), INVALID, "both in order"),
    Case("module a number", lambda: call([123, "greet", "x", None]), INVALID, "'module' must be"),
    Case("function a list", lambda: call(["greeting", ["greet"], "x"]), INVALID, "'function' must be"),
    Case("module empty", lambda: call(["", "greet", "x"]), INVALID, "'module' must be"),
    Case("input an object", lambda: call(["greeting", "greet", {"a": 1}, None]), INVALID, "'input' must be"),
    Case(
        "inputs a string", lambda: call(["greeting", "greet", "abc"], task=CALL_MANY_TASK), INVALID, "'inputs' must be"
    ),
    Case("limits a list", lambda: call(["greeting", "greet", "x", [1]]), INVALID, "'limits' must be"),
]

# Redis only: entries that are not even kombu envelopes, or envelopes kombu itself would trip over.
ENVELOPES: list[Case] = [
    Case("entry not JSON", lambda: Raw({}, b"", entry=b"\x00\xffnot an envelope"), MALFORMED, "not a message"),
    Case("entry a JSON list", lambda: Raw({}, b"", entry=b"[1, 2]"), MALFORMED, "not an object"),
    Case("entry nested 100k deep", lambda: Raw({}, b"", entry=b"[" * 100_000 + b"]" * 100_000), MALFORMED, "recursion"),
    Case("entry of 30 MB", lambda: Raw({}, b"", entry=b'{"body": "' + b"A" * 30_000_000 + b'"}'), MALFORMED, "above"),
    Case(
        "delivery tag an object",
        lambda: replace(greet(), envelope={"properties.delivery_tag": {"a": 1}}),
        MALFORMED,
        "delivery_tag",
    ),
    Case(
        "no delivery tag",
        lambda: replace(greet(), envelope={"properties.delivery_tag": None}),
        MALFORMED,
        "delivery_tag",
    ),
    Case(
        "delivery info a list",
        lambda: replace(greet(), envelope={"properties.delivery_info": [1]}),
        MALFORMED,
        "delivery_info",
    ),
    Case(
        "routing key an object",
        lambda: replace(greet(), envelope={"properties.delivery_info.routing_key": {}}),
        MALFORMED,
        "routing_key",
    ),
    Case(
        "unknown body encoding",
        lambda: replace(greet(), envelope={"properties.body_encoding": "rot13"}),
        MALFORMED,
        "body_encoding",
    ),
    Case("body not base64", lambda: replace(greet(), envelope={"body": "%%%not base64%%%"}), MALFORMED, ""),
    Case("body a number", lambda: replace(greet(), envelope={"body": 12}), MALFORMED, "body must be a string"),
    Case("headers a list", lambda: replace(greet(), envelope={"headers": [1]}), MALFORMED, "headers"),
    Case(
        "content type an object",
        lambda: replace(greet(), envelope={"content-type": {"a": 1}}),
        MALFORMED,
        "content-type",
    ),
]
