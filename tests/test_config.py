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
        Settings(
            manifests=(),
            registry_url="redis://registry:6379/1",
            publisher_url="redis://publisher:secret@registry:6379/1",
            registry_poll_s=0.25,
            max_module_mb=5,
            compile_timeout_s=3.0,
            compile_memory_mb=512,
            shared_artifacts=True,
        ),
    ],
)
def test_settings_survive_the_trip_through_the_environment(settings: Settings) -> None:
    env = settings.to_env()
    assert all(key.startswith("WASMQ_") and isinstance(value, str) for key, value in env.items())
    assert Settings.from_env(env) == settings


def test_registry_and_publisher_default_to_the_result_backend() -> None:
    settings = Settings(redis_url="redis://a/0", result_url="redis://b/0")
    assert settings.registry == settings.publisher == "redis://b/0"
    settings = settings.with_(registry_url="redis://c/0")
    assert settings.registry == settings.publisher == "redis://c/0"
    assert settings.with_(publisher_url="redis://p:pw@c/0").publisher == "redis://p:pw@c/0"


def test_an_empty_manifest_variable_means_no_seed_manifest() -> None:
    assert Settings.from_env({"WASMQ_MANIFEST": ""}).manifests == ()
    assert Settings.from_env({}).manifests == Settings().manifests


def test_a_malformed_flag_is_refused_naming_the_variable() -> None:
    from worker.errors import ConfigError

    with pytest.raises(ConfigError, match="WASMQ_SHARED_ARTIFACTS"):
        Settings.from_env({"WASMQ_SHARED_ARTIFACTS": "maybe"})
