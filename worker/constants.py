"""Names shared by producers and workers: task names, Redis key prefixes."""

CALL_TASK = "wasmq.call"
CALL_MANY_TASK = "wasmq.call_many"
KEY_PREFIX = "wasmq:"


def dead_entries_key(queue: str) -> str:
    """Hash: entry id -> JSON entry, one dead-letter queue per job queue."""
    return f"{KEY_PREFIX}{queue}:dead:entries"


def dead_order_key(queue: str) -> str:
    """Sorted set: entry ids scored by the time they were recorded."""
    return f"{KEY_PREFIX}{queue}:dead:order"
