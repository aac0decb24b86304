"""Settings, built once per process from `WASMQ_*` environment variables.

Everything tunable lives here so that no other module reads the environment. `Settings.from_env()` is the
only constructor that looks at `os.environ`; tests build `Settings(...)` directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path

from .connections import SentinelOptions, is_redis_url, is_sentinel_url, parse_sentinel_url, redact
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
    ("WASMQ_REGISTRY_URL", "registry_url"),
    ("WASMQ_PUBLISHER_URL", "publisher_url"),
    ("WASMQ_QUEUE", "queue"),
    ("WASMQ_BATCH_QUEUE", "batch_queue"),
    ("WASMQ_LOG_FORMAT", "log_format"),
    ("WASMQ_METRICS_HOST", "metrics_host"),
    ("WASMQ_SENTINEL_MASTER", "sentinel_master"),
    ("WASMQ_SENTINEL_PASSWORD", "sentinel_password"),
)
INT_VARS = (
    ("WASMQ_EPOCH_TICK_MS", "epoch_tick_ms"),
    ("WASMQ_PREFETCH", "prefetch"),
    ("WASMQ_CONCURRENCY", "concurrency"),
    ("WASMQ_RESULT_TTL_S", "result_ttl_s"),
    ("WASMQ_CHUNK_SIZE", "chunk_size"),
    ("WASMQ_BATCH_WINDOW", "batch_window"),
    ("WASMQ_VISIBILITY_TIMEOUT_S", "visibility_timeout_s"),
    ("WASMQ_TASK_TIME_LIMIT_S", "task_time_limit_s"),
    ("WASMQ_DEADLINE_RETRIES", "deadline_retries"),
    ("WASMQ_MAX_WORKER_LOST_RETRIES", "max_worker_lost_retries"),
    ("WASMQ_MAX_CAPTURED_OUTPUT", "max_captured_output"),
    ("WASMQ_METRICS_PORT", "metrics_port"),
    ("WASMQ_MAX_MODULE_MB", "max_module_mb"),
    ("WASMQ_COMPILE_MEMORY_MB", "compile_memory_mb"),
    ("WASMQ_MAX_MESSAGE_BYTES", "max_message_bytes"),
    ("WASMQ_MAX_RESULT_BYTES", "max_result_bytes"),
)
FLOAT_VARS = (
    ("WASMQ_TIME_LIMIT_MARGIN_S", "time_limit_margin_s"),
    ("WASMQ_RETRY_BACKOFF_S", "retry_backoff_s"),
    ("WASMQ_RETRY_BACKOFF_MAX_S", "retry_backoff_max_s"),
    ("WASMQ_STALL_CHECK_S", "stall_check_s"),
    ("WASMQ_CHUNK_TARGET_S", "chunk_target_s"),
    ("WASMQ_CHUNK_BUDGET_S", "chunk_budget_s"),
    ("WASMQ_STATS_FLUSH_S", "stats_flush_s"),
    ("WASMQ_EVENT_FLUSH_S", "event_flush_s"),
    ("WASMQ_COMPILE_TIMEOUT_S", "compile_timeout_s"),
    ("WASMQ_REGISTRY_POLL_S", "registry_poll_s"),
    ("WASMQ_NODE_TIMEOUT_S", "node_timeout_s"),
)
BOOL_VARS = (
    ("WASMQ_TASK_EVENTS", "task_events"),
    ("WASMQ_SHARED_ARTIFACTS", "shared_artifacts"),
)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Process-wide configuration; frozen so that nothing changes it behind a running worker's back."""

    redis_url: str = DEFAULT_REDIS_URL
    broker_url: str | None = None  # defaults to redis_url
    result_url: str | None = None  # defaults to redis_url
    # The shared module registry: the result backend's Redis unless given. Writing to it (publish, yank) uses
    # `publisher_url`, whose credentials are a publisher's (a Redis ACL user that workers and producers lack).
    registry_url: str | None = None
    publisher_url: str | None = None  # defaults to the registry's URL (enough where Redis has no ACL users)
    registry_poll_s: float = 1.0  # how often a process checks the registry's revision (behind pushed notices)
    max_module_mb: int = 64  # a module larger than this is refused at publish, and never fetched
    # Workers may load precompiled artifacts that the publisher stored in the registry (native code, trusted
    # because only a publisher can write registry keys) instead of compiling; off: every host compiles.
    shared_artifacts: bool = False
    manifests: tuple[Path, ...] = (DEFAULT_MANIFEST,)  # read-only seed manifests; () for none
    cache_dir: Path | None = field(default_factory=_default_cache_dir)  # None: no precompiled cache
    epoch_tick_ms: int = 5
    prefetch: int = 1
    concurrency: int = 2
    queue: str = "wasmq"  # single jobs; batch chunks go to `batch_lane`, which workers take only when this is empty
    batch_queue: str | None = None  # default: the queue's name + ".batch"
    result_ttl_s: int = 86_400
    chunk_size: int = 4000  # the largest chunk a batch sends
    # A batch sizes its chunks to take about this long in the sandbox (smaller for slow functions, so that a
    # single job never waits long behind one), and keeps at most `batch_window` chunks unanswered or unread.
    chunk_target_s: float = 0.25
    # A worker starts no step of a batch's chunk (worker/chunk_result.py STEP inputs) after this long and the
    # producer sends the rest again: a chunk's time limit is this plus one step's deadlines, whatever its size.
    chunk_budget_s: float = 5.0
    batch_window: int = 32
    # Celery's time limits are only a backstop above the epoch deadline: seconds added to a job's deadline.
    time_limit_margin_s: float = 30.0
    task_time_limit_s: int = 300  # hard limit of a message that sets none (foreign producers)
    visibility_timeout_s: int = 3_600  # must exceed every hard time limit and every retry countdown
    # Liveness (Redis brokers): a worker node whose heartbeat is this old is declared dead by another node,
    # which hands its unacknowledged messages back to their queues (worker/queue/liveness.py).
    node_timeout_s: float = 15.0
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
    # Compiling a module runs in a child process under these limits (worker/sandbox/compiler.py): CPU seconds
    # (wall time gets twice as much) and MB of address space. Over a limit, the module is rejected.
    compile_timeout_s: float = 60.0
    compile_memory_mb: int = 2048
    # Redis Sentinel (`sentinel://` URLs): the monitored master's name, and the sentinels' own password (the
    # master's password, if any, is in the URL).
    sentinel_master: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        from .connections import redact  # a repr in a log line or a traceback never shows a password

        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        return redact(f"Settings({shown})")

    @property
    def broker(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def backend(self) -> str:
        return self.result_url or self.redis_url

    @property
    def registry(self) -> str:
        return self.registry_url or self.backend

    @property
    def publisher(self) -> str:
        return self.publisher_url or self.registry

    @property
    def batch_lane(self) -> str:
        return self.batch_queue or f"{self.queue}.batch"

    @property
    def lanes(self) -> tuple[str, str]:
        """The queues a worker takes from, in the order it prefers them: single jobs, then batch chunks."""
        return (self.queue, self.batch_lane)

    def home_queue(self, name: str | None) -> str:
        """The queue a message taken from queue `name` counts under (stats, metrics): the batch lane's
        count under the queue it serves."""
        return self.queue if not name or name == self.batch_lane else name

    @property
    def sentinel(self) -> SentinelOptions | None:
        """What `connect` needs besides a `sentinel://` URL; None when no master is named."""
        if not self.sentinel_master:
            return None
        return SentinelOptions(master=self.sentinel_master, password=self.sentinel_password)

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
        for var, name in BOOL_VARS:
            if env.get(var):
                flag = env[var].strip().lower()
                if flag not in (*_TRUE, *_FALSE):
                    raise ConfigError(f"{var} must be 1 or 0, not {env[var]!r}")
                kw[name] = flag in _TRUE
        if "WASMQ_MANIFEST" in env:  # set but empty: no seed manifest at all (everything from the registry)
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
        env.update({var: "1" if getattr(self, name) else "0" for var, name in BOOL_VARS})
        env["WASMQ_MANIFEST"] = os.pathsep.join(str(p) for p in self.manifests)
        env["WASMQ_CACHE_DIR"] = "" if self.cache_dir is None else str(self.cache_dir)
        return env

    def check(self) -> None:
        """Refuse inconsistent settings up front rather than losing jobs later."""
        if self.log_format not in ("auto", "json", "console"):
            raise ConfigError(f"WASMQ_LOG_FORMAT must be auto, json or console, not {self.log_format!r}")
        if self.metrics_port is not None and not 0 < self.metrics_port < 65536:
            raise ConfigError(f"WASMQ_METRICS_PORT must be a TCP port (1-65535), not {self.metrics_port}")
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
        if self.node_timeout_s >= self.visibility_timeout_s:
            raise ConfigError(
                f"WASMQ_NODE_TIMEOUT_S ({self.node_timeout_s:g}) must stay below the visibility timeout "
                f"({self.visibility_timeout_s} s), the backstop it shortens"
            )
        if self.chunk_budget_s + self.time_limit_margin_s >= self.visibility_timeout_s:
            raise ConfigError(
                f"WASMQ_CHUNK_BUDGET_S ({self.chunk_budget_s:g}) must stay well below the visibility timeout "
                f"({self.visibility_timeout_s} s): a chunk may run that long before its last step"
            )
        if self.batch_lane == self.queue:
            raise ConfigError(f"WASMQ_BATCH_QUEUE must differ from WASMQ_QUEUE ({self.queue!r})")
        self._check_urls()

    def _check_urls(self) -> None:
        urls = {"WASMQ_REDIS_URL": self.redis_url, "WASMQ_BROKER_URL": self.broker_url,
                "WASMQ_RESULT_URL": self.result_url}  # fmt: skip
        sentinels = [(var, url) for var, url in urls.items() if url and is_sentinel_url(url)]
        for var, url in sentinels:
            try:
                parse_sentinel_url(url)
            except ConfigError as exc:
                raise ConfigError(f"{var}: {exc.message}") from None
        if sentinels and not self.sentinel_master:
            raise ConfigError(f"{sentinels[0][0]} is a Sentinel URL: set WASMQ_SENTINEL_MASTER to the master's name")
        if not is_redis_url(self.redis_url):
            raise ConfigError(redact(f"WASMQ_REDIS_URL must be a Redis or Sentinel URL, not {self.redis_url!r}"))


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
