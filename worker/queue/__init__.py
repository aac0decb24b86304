"""The Celery side: the app and its reliability settings, the two tasks, the retry policy, the consumer and
intake (dead letters for what cannot run), the hardened Redis transport, and the per-process state."""
