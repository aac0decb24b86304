"""Every Redis connection wasmq opens, made one way: URL handling, timeouts, and passwords kept out of sight.

`connect(url)` is the one redis-py client factory (results, dead letters, stats, the lost-message check,
`wasmq status`); `redact(url)` is what any message, log line or error shows of a URL; `CONNECTION_ERRORS` is
what "the broker or backend went away" looks like, whichever library noticed; `is_redis_url` says whether a
broker is Redis (the Redis-only features: hardened transport, lost-message check, queue depths).
"""

from __future__ import annotations

import re

import redis
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .errors import BrokerUnavailable

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    RedisConnectionError,
    RedisTimeoutError,
    BrokerUnavailable,
)
DEFAULT_TIMEOUT_S = 10.0
# A URL's user info runs from `scheme://` to the last `@` before the URL ends (whitespace, a quote, or the
# next URL): that is how redis-py and kombu read a password with an unescaped `@` or `/` in it.
_USERINFO = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<info>(?:(?![a-z][a-z0-9+.-]*://)[^\s'\"<>])*)@", re.IGNORECASE
)
_QUERY_SECRET = re.compile(r"(?P<key>[?&;](?:password|pass|pwd|sentinel_password)=)[^&;\s'\"<>]*", re.IGNORECASE)


def is_redis_url(url: str) -> bool:
    return url.startswith(REDIS_SCHEMES)


def redact(text: str) -> str:
    """`text` with the password of every URL in it replaced by `***` (the user name stays, to help debugging)."""
    text = _USERINFO.sub(_hide_password, text)
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}***", text)


def _hide_password(match: re.Match[str]) -> str:
    user, colon, _ = match["info"].partition(":")
    return f"{match['scheme']}{user}:***@" if colon else match.group(0)


def connect(url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, connect_timeout_s: float | None = None) -> redis.Redis:
    """A redis-py client for `url` with bounded socket timeouts (no call can hang a worker forever)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=connect_timeout_s if connect_timeout_s is not None else min(timeout_s, 5.0),
    )
