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


# -- the shared module registry (worker/catalog/registry.py) ----------------------------------------------
# Every registry key starts with "{", and no other wasmq or Celery key does: so one ACL key pattern,
# `~[^{]*`, gives workers and producers write access to everything except the registry, which they may only
# read (`REGISTRY_READER_ACL`). The braces are a Redis Cluster hash tag too: all registry keys share a slot,
# so an upload can be renamed into place atomically.
REGISTRY_PREFIX = "{wasmq-registry}:"
REGISTRY_NAMES = f"{REGISTRY_PREFIX}names"  # set: every module name with at least one entry
REGISTRY_REV = f"{REGISTRY_PREFIX}rev"  # counter: +1 on every publication and yank
REGISTRY_CHANNEL = f"{REGISTRY_PREFIX}changes"  # pub/sub: one JSON notice {rev, name, version, action} per change
REGISTRY_CHUNK_BYTES = 1024 * 1024  # blobs and artifacts are stored in pieces of this size

# ACL rules (after `ACL SETUSER <user> on >password`) of the two roles. Workers and producers: read the
# registry, anything else on every other key, no @dangerous command (FLUSHALL, SWAPDB, KEYS, CONFIG, ...).
# Publishers: the registry keys and its channel only. Both are named users: the `default` user must keep every
# permission (and a password of its own), because Redis (7.0.15 here; fixed upstream by redis/redis#14545)
# replays the MULTI/EXEC blocks of its append-only file as the default user and silently drops those that user
# may not run: with a restricted default user, a restart loses every publication (redis/redis#14541).
REGISTRY_READER_ACL = f"resetkeys ~[^{{]* %R~{REGISTRY_PREFIX}* resetchannels &* +@all -@dangerous"
REGISTRY_PUBLISHER_ACL = f"resetkeys ~{REGISTRY_PREFIX}* resetchannels &{REGISTRY_PREFIX}* +@all -@dangerous"


def registry_module_key(name: str) -> str:
    """Hash: version -> JSON entry (sha256, functions and ABIs, limits, capabilities, publisher, yank)."""
    return f"{REGISTRY_PREFIX}module:{name}"


def registry_blob_key(sha256: str) -> str:
    """Hash: `size`, `chunks` and the chunks `0` .. `chunks - 1` of one module's bytes, stored once per content."""
    return f"{REGISTRY_PREFIX}blob:{sha256}"


def registry_artifact_key(fingerprint_tag: str, kind: str, sha256: str) -> str:
    """Hash, as a blob plus `sha256` of the artifact: one module's precompiled artifact for one engine."""
    return f"{REGISTRY_PREFIX}artifact:{fingerprint_tag}:{kind}:{sha256}"


def registry_upload_key(token: str) -> str:
    """Hash being written by one publisher (it expires if the upload is abandoned), renamed into place when done."""
    return f"{REGISTRY_PREFIX}upload:{token}"


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
