"""AMQP header tables decoded to a bounded depth (worker/queue/amqp_frames.py): a table nested far past the
recursion limit decodes, with a marker where it went too deep, and what follows it is read as before."""

from __future__ import annotations

from typing import Any

from amqp import serialization

from tests.support.messages import deep_encoding, nested
from worker.queue import amqp_frames


def encoded(table: dict[str, Any]) -> bytes:
    with deep_encoding():
        return bytes(serialization.dumps("F", [table]))


def test_a_deep_header_table_decodes_with_a_marker_and_the_rest_intact() -> None:
    amqp_frames.install()
    amqp_frames.install()  # idempotent
    buf = encoded({"deep": nested(20_000), "dict": {"a": {"b": {"c": 1}}}, "after": "still read"})
    (table,), offset = serialization.loads("F", buf, 0)
    assert offset == len(buf)
    assert table["after"] == "still read" and table["dict"] == {"a": {"b": {"c": 1}}}
    value, depth = table["deep"], 1
    while isinstance(value, list):
        (value,) = value
        depth += 1
    assert value == amqp_frames.SKIPPED and depth == amqp_frames.MAX_DEPTH + 1  # the lists above the marker


def test_shallow_tables_decode_as_before() -> None:
    amqp_frames.install()
    table = {"task": "wasmq.call", "id": "x", "timelimit": [30, 20], "stamps": {"k": ["v", 1, True, None]}}
    (decoded,), _ = serialization.loads("F", encoded(table), 0)
    assert decoded == table
