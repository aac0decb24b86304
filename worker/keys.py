"""Names shared by producers and workers: task names, Redis key names and prefixes, stats slots."""

CALL_TASK = "wasmq.call"
CALL_MANY_TASK = "wasmq.call_many"
KEY_PREFIX = "wasmq:"


def dead_entries_key(queue: str) -> str:
    """Hash: entry id -> JSON entry, one dead-letter queue per job queue."""
    return f"{KEY_PREFIX}{queue}:dead:entries"


def dead_order_key(queue: str) -> str:
    """Sorted set: entry ids scored by the time they were recorded."""
    return f"{KEY_PREFIX}{queue}:dead:order"


# -- monitoring: job counters for `wasmq status`, aggregated in Redis across every worker and host ----------

STATS_SLOT_S = 10  # counters are kept per 10-second slot for the recent window ...
STATS_WINDOW_S = 300  # ... and `wasmq status` sums the slots of the last 5 minutes
STATS_SLOT_TTL_S = 900  # a slot outlives the window by enough to absorb clock skew and late flushes
STATUS_COMMAND = "wasmq_status"  # the remote-control command a worker answers for `wasmq status`


def stats_total_key(queue: str) -> str:
    """Hash: counter field -> count since counting began (field `since`: when that was)."""
    return f"{KEY_PREFIX}{queue}:stats:total"


def stats_slot_key(queue: str, slot: int) -> str:
    """Hash: counter field -> count within one `STATS_SLOT_S` slot (slot = unix time // STATS_SLOT_S)."""
    return f"{KEY_PREFIX}{queue}:stats:slot:{slot}"
