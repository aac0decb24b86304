"""How big a batch's messages may be: by count, and by size, so that no message exceeds the worker's intake
limit and no chunk's result could not hold even its error entries (the streamed batch, batch.py, cuts its
chunks by these).

Sizes are what the worker will see: JSON with ASCII escapes (a control character takes six bytes, an astral
one twelve). A short input is counted at its worst case, twelve bytes a character (cheap, and small in
absolute terms); a long one is measured. An input that alone would not fit in a message is not sent: it gets
its own `InvalidInput`. Items whose outputs did not fit in their chunk's result (`ResultTooLarge`) are packed
again by the size the worker reported, so that each new chunk's result fits.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..bounds import encoded_size
from ..config import Settings
from ..errors import InvalidInput
from ..queue.contract import MAX_CHUNK_ITEMS
from ..queue.fitting import ERROR_ENTRY_BYTES, RESULT_OVERHEAD

MESSAGE_OVERHEAD = 8 * 1024  # a chunk message's body besides its inputs: names, limits, kwargs, embed
MEASURE_FROM = 1024  # characters from which an input is measured rather than bounded


def message_budget(settings: Settings) -> int:
    """Bytes a chunk's inputs may take in its message body."""
    return settings.max_message_bytes - MESSAGE_OVERHEAD


def max_items(settings: Settings, chunk_size: int) -> int:
    """Items per chunk: `chunk_size`, or fewer if the result limit could not hold that many error entries,
    and never more than a worker takes in one message."""
    errors_fit = (settings.max_result_bytes - RESULT_OVERHEAD) // (2 * ERROR_ENTRY_BYTES)
    return max(1, min(chunk_size, errors_fit, MAX_CHUNK_ITEMS))


def input_cost(text: str) -> int:
    """Bytes `text` takes (at most) among a message's inputs: the JSON string and its separator."""
    return (12 * len(text) + 2 if len(text) < MEASURE_FROM else encoded_size(text)) + 2


def too_large(index: int, cost: int, budget: int, settings: Settings) -> InvalidInput:
    return InvalidInput(
        f"input {index} takes {cost} bytes as JSON, above the message limit of {budget} bytes "
        f"(WASMQ_MAX_MESSAGE_BYTES={settings.max_message_bytes}); it was not sent"
    )


def repack(inputs: Sequence[str], sizes: dict[int, int], settings: Settings) -> list[list[int]]:
    """Chunks for items sent again after `ResultTooLarge`, from the result size the worker reported for each,
    so that each chunk's result fits, and its message too."""
    budget, message = settings.max_result_bytes - RESULT_OVERHEAD, message_budget(settings)
    chunks: list[list[int]] = []
    current: list[int] = []
    used = sent = 0
    for index in sorted(sizes):
        cost, size = sizes[index] + ERROR_ENTRY_BYTES, input_cost(inputs[index])
        if current and (used + cost > budget or sent + size > message):
            chunks.append(current)
            current, used, sent = [], 0, 0
        current.append(index)
        used += cost
        sent += size
    if current:
        chunks.append(current)
    return chunks
