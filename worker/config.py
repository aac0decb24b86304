"""Settings, built once per process from `WASMQ_*` environment variables.

Everything tunable lives here so that no other module reads the environment. `Settings.from_env()` is the
only constructor that looks at `os.environ`; tests build `Settings(...)` directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path

from .errors import ConfigError
from .spec import MIB

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = REPO_ROOT / "modules" / "manifest.json"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
MIN_MESSAGE_BYTES = 64 * 1024  # below this even a short chunk or one error would not fit


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wasmq"


# WASMQ_* variable -> Settings field, by how the value is read (`from_env`) and written (`to_env`).
TEXT_VARS = (
    ("WASMQ_REDIS_URL", "redis_url"),
    ("WASMQ_BROKER_URL", "broker_url"),
    ("WASMQ_RESULT_URL", "result_url"),
    ("WASMQ_QUEUE", "queue"),
    ("WASMQ_LOG_FORMAT", "log_format"),
    ("WASMQ_METRICS_HOST", "metrics_host"),
)
INT_VARS = (
    ("WASMQ_EPOCH_TICK_MS", "epoch_tick_ms"),
    ("WASMQ_PREFETCH", "prefetch"),
    ("WASMQ_CONCURRENCY", "concurrency"),
    ("WASMQ_RESULT_TTL_S", "result_ttl_s"),
    ("WASMQ_CHUNK_SIZE", "chunk_size"),
    ("WASMQ_VISIBILITY_TIMEOUT_S", "visibility_timeout_s"),
    ("WASMQ_TASK_TIME_LIMIT_S", "task_time_limit_s"),
    ("WASMQ_DEADLINE_RETRIES", "deadline_retries"),
    ("WASMQ_MAX_WORKER_LOST_RETRIES", "max_worker_lost_retries"),
    ("WASMQ_MAX_CAPTURED_OUTPUT", "max_captured_output"),
    ("WASMQ_METRICS_PORT", "metrics_port"),
    ("WASMQ_MAX_MESSAGE_BYTES", "max_message_bytes"),
    ("WASMQ_MAX_RESULT_BYTES", "max_result_bytes"),
)
FLOAT_VARS = (
    ("WASMQ_TIME_LIMIT_MARGIN_S", "time_limit_margin_s"),
    ("WASMQ_RETRY_BACKOFF_S", "retry_backoff_s"),
    ("WASMQ_RETRY_BACKOFF_MAX_S", "retry_backoff_max_s"),
    ("WASMQ_STALL_CHECK_S", "stall_check_s"),
    ("WASMQ_STATS_FLUSH_S", "stats_flush_s"),
    ("WASMQ_EVENT_FLUSH_S", "event_flush_s"),
)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Process-wide configuration; frozen so that nothing changes it behind a running worker's back."""

    redis_url: str = DEFAULT_REDIS_URL
    broker_url: str | None = None  # defaults to redis_url
    result_url: str | None = None  # defaults to redis_url
    manifests: tuple[Path, ...] = (DEFAULT_MANIFEST,)
    cache_dir: Path | None = field(default_factory=_default_cache_dir)  # None: no precompiled cache
    epoch_tick_ms: int = 5
    prefetch: int = 1
    concurrency: int = 2
    queue: str = "wasmq"
    result_ttl_s: int = 86_400
    chunk_size: int = 500
    # Celery's time limits are only a backstop above the epoch deadline: seconds added to a job's deadline.
    time_limit_margin_s: float = 30.0
    task_time_limit_s: int = 300  # hard limit of a message that sets none (foreign producers)
    visibility_timeout_s: int = 3_600  # must exceed every hard time limit and every retry countdown
    deadline_retries: int = 2  # DeadlineExceeded is retried at most this often (and never past max_retries)
    retry_backoff_s: float = 0.5  # first retry waits up to this long (full jitter), doubling per attempt
    retry_backoff_max_s: float = 30.0
    max_worker_lost_retries: int = 3  # a job whose worker process dies is run again at most this often
    stall_check_s: float = 10.0  # a producer waiting this long without a result looks for lost messages
    max_captured_output: int = 64 * 1024  # bytes of WASI stdout/stderr kept per call
    # A task message's body (JSON, after decompression) is at most this large: a worker dead-letters a larger
    # one unread, and the producer splits batch chunks so that none is (worker/queue/intake.py).
    max_message_bytes: int = 16 * MIB
    # A job's stored result (JSON, as Celery stores it) is at most this large: a chunk's items that do not fit
    # are answered `ResultTooLarge` and sent again in smaller chunks by the producer (worker/queue/fitting.py).
    max_result_bytes: int = 16 * MIB
    log_format: str = "auto"  # auto | json | console
    # Celery task events (Flower, `celery events`), on by default; WASMQ_TASK_EVENTS=0 turns them off. A worker
    # sends them in batches, at most every `event_flush_s` (worker/consumer.py): monitors see them that much later.
    task_events: bool = True
    event_flush_s: float = 0.1
    metrics_port: int | None = None  # a worker serves Prometheus metrics on this port (None: no metrics)
    metrics_host: str = "0.0.0.0"  # address the metrics server binds
    stats_flush_s: float = 1.0  # a worker process sends its job counters to Redis this often (batched)

    def __repr__(self) -> str:
        from .connections import redact  # a repr in a log line or a traceback never shows a password

        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return redact(f"Settings({shown})")

    @property
    def broker(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def backend(self) -> str:
        return self.result_url or self.redis_url

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests, CLI flags)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read `WASMQ_*` variables; a malformed value is a `ConfigError` naming the variable."""
        env = dict(os.environ if env is None else env)
        kw: dict[str, object] = {}
        for var, name in TEXT_VARS:
            if env.get(var):
                kw[name] = env[var]
        for var, name in INT_VARS:
            if env.get(var):
                kw[name] = _positive_int(var, env[var])
        for var, name in FLOAT_VARS:
            if env.get(var):
                kw[name] = _positive_float(var, env[var])
        if env.get("WASMQ_TASK_EVENTS"):
            flag = env["WASMQ_TASK_EVENTS"].strip().lower()
            if flag not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
                raise ConfigError(f"WASMQ_TASK_EVENTS must be 1 or 0, not {env['WASMQ_TASK_EVENTS']!r}")
            kw["task_events"] = flag in ("1", "true", "yes", "on")
        if env.get("WASMQ_MANIFEST"):
            kw["manifests"] = tuple(Path(p) for p in env["WASMQ_MANIFEST"].split(os.pathsep) if p)
        if "WASMQ_CACHE_DIR" in env:
            kw["cache_dir"] = Path(env["WASMQ_CACHE_DIR"]) if env["WASMQ_CACHE_DIR"] else None
        settings = cls(**kw)  # type: ignore[arg-type]
        settings.check()
        return settings

    def to_env(self) -> dict[str, str]:
        """The `WASMQ_*` variables from which `from_env` builds these same settings: what a child process
        (a worker started by the demo, a test or a benchmark) is given."""
        env = {
            var: str(getattr(self, name))
            for var, name in (*TEXT_VARS, *INT_VARS, *FLOAT_VARS)
            if getattr(self, name) is not None
        }
        env["WASMQ_TASK_EVENTS"] = "1" if self.task_events else "0"
        env["WASMQ_MANIFEST"] = os.pathsep.join(str(p) for p in self.manifests)
        env["WASMQ_CACHE_DIR"] = "" if self.cache_dir is None else str(self.cache_dir)
        return env

    def check(self) -> None:
        """Refuse inconsistent settings up front rather than losing jobs later."""
        if self.log_format not in ("auto", "json", "console"):
            raise ConfigError(f"WASMQ_LOG_FORMAT must be auto, json or console, not {self.log_format!r}")
        if self.metrics_port is not None and not 0 < self.metrics_port < 65536:
            raise ConfigError(f"WASMQ_METRICS_PORT must be a TCP port (1-65535), not {self.metrics_port}")
        if not self.manifests:
            raise ConfigError("WASMQ_MANIFEST names no manifest file")
        if self.task_time_limit_s + self.time_limit_margin_s >= self.visibility_timeout_s:
            raise ConfigError(
                f"WASMQ_VISIBILITY_TIMEOUT_S ({self.visibility_timeout_s}) must exceed the task hard time limit "
                f"({self.task_time_limit_s} s + {self.time_limit_margin_s:g} s margin): otherwise Redis would "
                "redeliver jobs that are still running"
            )
        for var, value in (
            ("WASMQ_MAX_MESSAGE_BYTES", self.max_message_bytes),
            ("WASMQ_MAX_RESULT_BYTES", self.max_result_bytes),
        ):
            if value < MIN_MESSAGE_BYTES:
                raise ConfigError(f"{var} must be at least {MIN_MESSAGE_BYTES} bytes, not {value}")
        if self.retry_backoff_max_s >= self.visibility_timeout_s:
            raise ConfigError("the retry backoff must stay below the visibility timeout")


def _positive_int(var: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{var} must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{var} must be positive, not {value}")
    return value


def _positive_float(var: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{var} must be a number, not {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{var} must be positive, not {raw}")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings.from_env()
