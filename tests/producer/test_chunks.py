"""How big a batch's messages may be (worker/producer/chunks.py); how the stream cuts them is in
test_client.py."""

from __future__ import annotations

import json

from worker.config import Settings
from worker.producer.chunks import MESSAGE_OVERHEAD, input_cost, max_items, message_budget, repack

SMALL = Settings(max_message_bytes=64 * 1024, max_result_bytes=64 * 1024)


def test_the_cost_is_never_below_the_json_size() -> None:
    for text in ("a", "\x01" * 10, "\U0001f600" * 5, "é" * 2000, "\x00" * 5000):
        assert input_cost(text) >= len(json.dumps(text)) + 2


def test_a_small_result_limit_bounds_the_items_per_chunk() -> None:
    assert max_items(Settings(), 500) == 500
    assert max_items(SMALL, 500) == (64 * 1024 - 16 * 1024) // 1024
    assert message_budget(Settings()) == Settings().max_message_bytes - MESSAGE_OVERHEAD


def test_items_sent_again_are_packed_by_their_result_size() -> None:
    inputs = ["x"] * 6
    chunks = repack(inputs, {0: 20_000, 2: 20_000, 3: 20_000, 5: 1000}, SMALL)
    assert chunks == [[0, 2], [3, 5]]  # 48 KB of room per chunk, 20 KB + an error entry's room each
