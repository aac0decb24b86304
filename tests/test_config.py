"""`Settings.to_env` is the inverse of `Settings.from_env`: a worker started with a test's, the demo's or a
benchmark's settings as WASMQ_* variables runs with exactly those settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.config import Settings
from worker.errors import ConfigError


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
            max_message_bytes=1 << 20,
            max_result_bytes=3 << 20,
        ),
    ],
)
def test_settings_survive_the_trip_through_the_environment(settings: Settings) -> None:
    env = settings.to_env()
    assert all(key.startswith("WASMQ_") and isinstance(value, str) for key, value in env.items())
    assert Settings.from_env(env) == settings


@pytest.mark.parametrize("var", ["WASMQ_MAX_MESSAGE_BYTES", "WASMQ_MAX_RESULT_BYTES"])
def test_size_limits_below_a_useful_minimum_are_refused(var: str) -> None:
    with pytest.raises(ConfigError, match=var):
        Settings.from_env({var: "1000"})


def test_the_repr_of_settings_shows_no_password() -> None:
    settings = Settings(redis_url="redis://:s3cret@h:1/0", broker_url="amqp://u:t0ps3cret@h//")
    shown = repr(settings)
    assert "s3cret" not in shown and "t0ps3cret" not in shown
    assert "redis://:***@h:1/0" in shown and "amqp://u:***@h//" in shown
