"""How a batch is cut into messages (worker/producer/chunks.py): by count and by encoded size."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from worker.config import Settings
from worker.producer.chunks import MESSAGE_OVERHEAD, input_cost, max_items, message_budget, plan, repack

SMALL = Settings(max_message_bytes=64 * 1024, max_result_bytes=64 * 1024)


@given(st.lists(st.text(max_size=3000), max_size=60), st.integers(min_value=1, max_value=30))
def test_chunks_cover_every_input_in_order_and_fit(inputs: list[str], size: int) -> None:
    chunks, refused = plan(inputs, size, SMALL)
    sent = [i for chunk in chunks for i in chunk]
    assert sorted(sent + list(refused)) == list(range(len(inputs))) and sent == sorted(sent)
    for chunk in chunks:
        assert 0 < len(chunk) <= size
        assert len(json.dumps([inputs[i] for i in chunk])) <= message_budget(SMALL)
    for index in refused:
        assert len(json.dumps(inputs[index])) + 2 > message_budget(SMALL)


def test_the_cost_is_never_below_the_json_size() -> None:
    for text in ("a", "\x01" * 10, "\U0001f600" * 5, "é" * 2000, "\x00" * 5000):
        assert input_cost(text) >= len(json.dumps(text)) + 2


def test_an_input_too_large_for_any_message_is_refused_by_name() -> None:
    chunks, refused = plan(["ok", "\x01" * 20_000, "ok"], 10, SMALL)
    assert chunks == [[0, 2]]
    assert "input 1 takes 120004 bytes as JSON, above the message limit" in refused[1].message


def test_a_small_result_limit_bounds_the_items_per_chunk() -> None:
    assert max_items(Settings(), 500) == 500
    assert max_items(SMALL, 500) == (64 * 1024 - 16 * 1024) // 1024
    assert message_budget(Settings()) == Settings().max_message_bytes - MESSAGE_OVERHEAD


def test_items_sent_again_are_packed_by_their_result_size() -> None:
    inputs = ["x"] * 6
    chunks = repack(inputs, {0: 20_000, 2: 20_000, 3: 20_000, 5: 1000}, SMALL)
    assert chunks == [[0, 2], [3, 5]]  # 48 KB of room per chunk, 20 KB + an error entry's room each
