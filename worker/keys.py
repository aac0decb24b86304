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


# -- liveness: which worker node holds which unacknowledged message, and who is still alive -------------------

NODES_KEY = f"{KEY_PREFIX}nodes"  # hash: node id -> JSON {name, pid, host, queues, timeout_s, started_at}
HOLDERS_KEY = f"{KEY_PREFIX}unacked:holders"  # hash: delivery tag (of kombu's `unacked` hash) -> node id
REAPER_LOCK_KEY = f"{KEY_PREFIX}nodes:reaper"  # lock: one node at a time hands back a dead node's messages
DEAD_NODES_KEPT = 50  # events kept per queue in `dead_nodes_key`


def node_alive_key(node: str) -> str:
    """String with a TTL of the node's own timeout, refreshed by its heartbeat: gone means the node is dead."""
    return f"{KEY_PREFIX}node:{node}:alive"


def dead_nodes_key(queue: str) -> str:
    """List, newest first: JSON events of nodes declared dead and the messages of this queue handed back."""
    return f"{KEY_PREFIX}{queue}:nodes:dead"


def dead_nodes_total_key(queue: str) -> str:
    """Hash: `nodes` (declared dead) and `messages` (handed back to this queue), since counting began."""
    return f"{KEY_PREFIX}{queue}:nodes:dead:total"
