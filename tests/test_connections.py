"""URLs and clients (worker/connections.py): Sentinel URLs parsed and written the way kombu and Celery read
them, a client that refuses a Sentinel URL without a master name, and `redact`: what any message, log line or
error shows of a URL never holds its password, however written."""

from __future__ import annotations

import pytest
from celery import Celery
from celery.backends.redis import SentinelBackend
from kombu import Connection

from worker.connections import (
    SentinelOptions,
    connect,
    is_redis_url,
    is_sentinel_url,
    parse_sentinel_url,
    redact,
    sentinel_url,
)
from worker.errors import ConfigError

THREE = "sentinel://10.0.0.1:26379;sentinel://10.0.0.2:26380;sentinel://10.0.0.3/2"


def test_a_sentinel_url_names_every_sentinel_and_one_database() -> None:
    address = parse_sentinel_url(THREE)
    assert address.hosts == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26379))
    assert address.db == 2 and address.username is None and address.password is None
    with_auth = parse_sentinel_url("sentinel://app:p%40ss@h1:1/3;sentinel://h2:2")
    assert (with_auth.username, with_auth.password, with_auth.db) == ("app", "p@ss", 3)
    assert "p@ss" not in repr(with_auth)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sentinel://", "names no host"),
        (";", "names no sentinel"),
        ("sentinel://h:port", "malformed"),
        ("sentinel://h/db", "not a number"),
        ("sentinel://h1/1;sentinel://h2/2", "disagree"),
        ("sentinel://:a@h1;sentinel://:b@h2", "disagree"),
        ("sentinel://h1;redis://h2:6379/0", "starts with sentinel://"),
    ],
)
def test_a_malformed_sentinel_url_is_a_config_error(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        parse_sentinel_url(url)
    assert ":a@" not in caught.value.message and ":b@" not in caught.value.message


def test_kombu_and_celery_read_the_written_url_as_meant() -> None:
    url = sentinel_url("sentinel://:p%3Bw@h1:1;sentinel://h2:2/5")
    assert url == "sentinel://:p%3Bw@h1:1/5;sentinel://:p%3Bw@h2:2/5"
    conn = Connection(url, transport_options={"master_name": "m"})
    assert (conn.virtual_host, conn.password, conn.transport_cls) == ("5", "p;w", "sentinel")
    assert conn.alt == url.split(";")
    params = SentinelBackend(app=Celery(set_as_current=False), url=url).connparams
    assert params["db"] == 5 and params["password"] == "p;w"
    assert [(h["host"], h["port"]) for h in params["hosts"]] == [("h1", 1), ("h2", 2)]
    assert sentinel_url("redis://h:1/0") == "redis://h:1/0"


def test_passwords_are_redacted_in_every_address() -> None:
    text = redact("broker sentinel://app:pw1@h1:1/0;sentinel://:pw1@h2:2/0 and redis://:pw2@h/0?password=pw3")
    assert "pw1" not in text and "pw2" not in text and "pw3" not in text
    assert "sentinel://app:***@h1:1/0;sentinel://:***@h2:2/0" in text
    assert redact(THREE) == THREE


def test_sentinel_urls_are_redis_urls() -> None:
    assert is_redis_url(THREE) and is_sentinel_url(THREE)
    assert is_redis_url("redis://h/0") and not is_sentinel_url("redis://h/0")
    assert not is_redis_url("amqp://h//")


def test_a_sentinel_url_needs_the_master_name() -> None:
    with pytest.raises(ConfigError, match="WASMQ_SENTINEL_MASTER"):
        connect("sentinel://:pw@h1:1/0")
    options = SentinelOptions(master="m", password="s3cret")
    assert "s3cret" not in repr(options)
    assert options.sentinel_kwargs(3.0) == {"socket_timeout": 3.0, "socket_connect_timeout": 3.0, "password": "s3cret"}


SECRET = "Sup3r-S3cret"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"redis://:{SECRET}@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        (f"redis://user:{SECRET}@h/0", "redis://user:***@h/0"),
        (f"rediss://:{SECRET}@h:6380", "rediss://:***@h:6380"),
        (f"amqp://guest:{SECRET}@rabbit:5672//", "amqp://guest:***@rabbit:5672//"),
        (f"redis://:{SECRET}@with@at@h/0", "redis://:***@h/0"),  # an unescaped @ in the password
        (f"redis://u:{SECRET}/slash@h/0", "redis://u:***@h/0"),  # an unescaped / in the password
        (f"redis://:{SECRET}%40enc@h/0", "redis://:***@h/0"),
        (f"redis://h:6379/0?password={SECRET}&db=1", "redis://h:6379/0?password=***&db=1"),
        (
            f"sentinel://:{SECRET}@s1:26379;sentinel://u:{SECRET}@s2:26379/0",
            "sentinel://:***@s1:26379;sentinel://u:***@s2:26379/0",
        ),
        (
            f"broker unreachable at 'redis://:{SECRET}@h:1/0': Error 111 (worker w1@host)",
            "broker unreachable at 'redis://:***@h:1/0': Error 111 (worker w1@host)",
        ),
        (
            f'{{"url": "redis://:{SECRET}@h/0", "other": "redis://x@y/1"}}',
            '{"url": "redis://:***@h/0", "other": "redis://x@y/1"}',
        ),
    ],
)
def test_passwords_are_hidden(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert SECRET not in redact(text)


@pytest.mark.parametrize("text", ["redis://127.0.0.1:6379/0", "redis://user@h/0", "worker w1@host done", "plain"])
def test_text_without_a_password_is_unchanged(text: str) -> None:
    assert redact(text) == text
