"""Names shared by producers and workers: task names, Redis key prefixes."""

CALL_TASK = "wasmq.call"
CALL_MANY_TASK = "wasmq.call_many"
KEY_PREFIX = "wasmq:"
