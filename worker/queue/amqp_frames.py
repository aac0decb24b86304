"""AMQP message headers, decoded to a bounded depth: a nested header table cannot stop a RabbitMQ worker.

py-amqp decodes a message's header table recursively, one Python call per level, in the worker's main
process and before kombu or Celery see the message: a table nested a few thousand levels deep raised
`RecursionError` there, which Celery treats as the end of the worker, and the message, never acknowledged,
went on to the next worker. `install` makes py-amqp stop descending at `MAX_DEPTH`: a table or array
deeper than that is skipped whole (both carry their length, so skipping reads nothing of them) and stands
as a marker string. The message is then delivered as usual, and the intake refuses it for its nesting
(worker/queue/intake.py) like any other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from struct import unpack_from
from typing import Any

from amqp import serialization

MAX_DEPTH = 32  # far below the recursion limit, far above the intake's own limit (8)
SKIPPED = "[nested too deep: not decoded]"
NESTED = (ord("F"), ord("A"))  # a table, an array: a 4-byte length follows the type


def bounded(read_item: Callable[[Any, int], tuple[Any, int]]) -> Callable[[Any, int], tuple[Any, int]]:
    """py-amqp's `_read_item`, descending at most `MAX_DEPTH` levels (it calls itself through the module, so
    every level goes through this)."""
    level = threading.local()

    def read(buf: Any, offset: int) -> tuple[Any, int]:
        depth = getattr(level, "depth", 0)
        if depth >= MAX_DEPTH and buf[offset] in NESTED:
            (length,) = unpack_from(">I", buf, offset + 1)
            return SKIPPED, offset + 5 + length
        level.depth = depth + 1
        try:
            return read_item(buf, offset)
        finally:
            level.depth = depth

    read.wasmq_bounded = True  # type: ignore[attr-defined]
    return read


def install() -> None:
    """Bound py-amqp's header decoding in this process (idempotent)."""
    if not getattr(serialization._read_item, "wasmq_bounded", False):
        serialization._read_item = bounded(serialization._read_item)
