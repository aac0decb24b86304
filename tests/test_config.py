"""`Settings.to_env` is the inverse of `Settings.from_env`: a worker started with a test's, the demo's or a
benchmark's settings as WASMQ_* variables runs with exactly those settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.config import Settings


@pytest.mark.parametrize(
    "settings",
    [
        Settings(),
        Settings(cache_dir=None, task_events=False, metrics_port=9808, log_format="json"),
        Settings(
            redis_url="redis://h:1/2",
            broker_url="amqp://guest@h//",
            result_url="redis://other/3",
            manifests=(Path("/a/m.json"), Path("/b/n.json")),
            queue="q",
            retry_backoff_s=0.1,
            event_flush_s=2.5,
            visibility_timeout_s=20,
            task_time_limit_s=10,
            time_limit_margin_s=5.0,
            retry_backoff_max_s=5.0,
        ),
    ],
)
def test_settings_survive_the_trip_through_the_environment(settings: Settings) -> None:
    env = settings.to_env()
    assert all(key.startswith("WASMQ_") and isinstance(value, str) for key, value in env.items())
    assert Settings.from_env(env) == settings
