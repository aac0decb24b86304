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
            node_timeout_s=2.5,
            max_message_bytes=1 << 20,
            max_result_bytes=3 << 20,
        ),
        Settings(
            redis_url="sentinel://:pw@h1:26379;sentinel://h2:26380/1",
            sentinel_master="mymaster",
            sentinel_password="s3cret",
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


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"WASMQ_REDIS_URL": "sentinel://h1:26379;sentinel://h2:26379/0"}, "WASMQ_SENTINEL_MASTER"),
        ({"WASMQ_BROKER_URL": "sentinel://h1:26379", "WASMQ_REDIS_URL": "redis://h/0"}, "WASMQ_SENTINEL_MASTER"),
        ({"WASMQ_REDIS_URL": "sentinel://h1:x", "WASMQ_SENTINEL_MASTER": "m"}, "WASMQ_REDIS_URL: malformed"),
        ({"WASMQ_REDIS_URL": "sentinel://h1;redis://h2", "WASMQ_SENTINEL_MASTER": "m"}, "starts with sentinel://"),
        ({"WASMQ_REDIS_URL": "amqp://u:pw@h//"}, "must be a Redis or Sentinel URL"),
        ({"WASMQ_NODE_TIMEOUT_S": "0"}, "WASMQ_NODE_TIMEOUT_S must be positive"),
        ({"WASMQ_NODE_TIMEOUT_S": "soon"}, "WASMQ_NODE_TIMEOUT_S must be a number"),
        ({"WASMQ_NODE_TIMEOUT_S": "3600"}, "must stay below the visibility timeout"),
        ({"WASMQ_CHUNK_BUDGET_S": "0"}, "WASMQ_CHUNK_BUDGET_S must be positive"),
        ({"WASMQ_CHUNK_BUDGET_S": "3590"}, "WASMQ_CHUNK_BUDGET_S (3590) must stay well below the visibility"),
    ],
)
def test_liveness_and_sentinel_settings_are_checked(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert problem in caught.value.message
    assert "pw" not in caught.value.message


def test_the_sentinel_password_is_never_shown() -> None:
    settings = Settings.from_env({"WASMQ_REDIS_URL": "sentinel://h:1/0", "WASMQ_SENTINEL_MASTER": "m",
                                  "WASMQ_SENTINEL_PASSWORD": "s3cret"})  # fmt: skip
    assert settings.sentinel is not None and settings.sentinel.password == "s3cret"
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(settings.sentinel)
    assert Settings().sentinel is None and Settings().node_timeout_s == 15.0


@pytest.mark.parametrize("var", ["WASMQ_MAX_MESSAGE_BYTES", "WASMQ_MAX_RESULT_BYTES"])
def test_size_limits_below_a_useful_minimum_are_refused(var: str) -> None:
    with pytest.raises(ConfigError, match=var):
        Settings.from_env({var: "1000"})


def test_the_repr_of_settings_shows_no_password() -> None:
    settings = Settings(redis_url="redis://:s3cret@h:1/0", broker_url="amqp://u:t0ps3cret@h//")
    shown = repr(settings)
    assert "s3cret" not in shown and "t0ps3cret" not in shown
    assert "redis://:***@h:1/0" in shown and "amqp://u:***@h//" in shown


def test_the_batch_lane_follows_the_queue_unless_named_and_counts_under_it() -> None:
    settings = Settings.from_env({"WASMQ_QUEUE": "jobs"})
    assert settings.lanes == ("jobs", "jobs.batch")
    assert settings.home_queue("jobs.batch") == "jobs" and settings.home_queue("other") == "other"
    assert settings.home_queue(None) == "jobs"
    named = Settings.from_env({"WASMQ_QUEUE": "jobs", "WASMQ_BATCH_QUEUE": "bulk"})
    assert named.lanes == ("jobs", "bulk") and named.to_env()["WASMQ_BATCH_QUEUE"] == "bulk"
    with pytest.raises(ConfigError, match="WASMQ_BATCH_QUEUE must differ"):
        Settings.from_env({"WASMQ_QUEUE": "jobs", "WASMQ_BATCH_QUEUE": "jobs"})
