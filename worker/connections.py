"""Every Redis connection wasmq opens, made one way: URL handling, timeouts, and passwords kept out of sight.

`connect(url)` is the one redis-py client factory (results, dead letters, stats, the lost-message check,
liveness, `wasmq status`); `redact(url)` is what any message, log line or error shows of a URL;
`CONNECTION_ERRORS` is what "the broker or backend went away" looks like, whichever library noticed;
`is_redis_url` says whether a broker is Redis (the Redis-only features: hardened transport, liveness,
lost-message check, queue depths).

Redis Sentinel: `sentinel://HOST:PORT;sentinel://HOST:PORT/DB` names the sentinels of one monitored master
(its name and the sentinels' own password are `SentinelOptions`, from the settings). A password in the URL
is the master's, as kombu and Celery read it. kombu and Celery take the database and the credentials from the
first address only, so `sentinel_url` writes them on every address, the one form handed to both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import redis
import redis.sentinel
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .errors import BrokerUnavailable, ConfigError

SENTINEL_SCHEME = "sentinel://"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", SENTINEL_SCHEME)
DEFAULT_SENTINEL_PORT = 26379
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


def is_sentinel_url(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEME)


def redact(text: str) -> str:
    """`text` with the password of every URL in it replaced by `***` (the user name stays, to help debugging)."""
    text = _USERINFO.sub(_hide_password, text)
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}***", text)


def _hide_password(match: re.Match[str]) -> str:
    user, colon, _ = match["info"].partition(":")
    return f"{match['scheme']}{user}:***@" if colon else match.group(0)


@dataclass(frozen=True, kw_only=True)
class SentinelOptions:
    """What a `sentinel://` URL does not say: the monitored master's name, and the sentinels' own password."""

    master: str
    password: str | None = field(default=None, repr=False)

    def sentinel_kwargs(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """redis-py's keyword arguments for the connections to the sentinels themselves (bounded, too)."""
        kwargs: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": min(timeout_s, 5.0)}
        if self.password:
            kwargs["password"] = self.password
        return kwargs


@dataclass(frozen=True)
class SentinelAddress:
    """A parsed `sentinel://` URL: the sentinels, the database, and the master's credentials."""

    hosts: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_sentinel_url(url: str) -> SentinelAddress:
    """The sentinels of `url`; the database and credentials may be given on any address (the same on each)."""
    hosts: list[tuple[str, int]] = []
    dbs: set[int] = set()
    credentials: set[tuple[str | None, str | None]] = set()
    for chunk in (part.strip() for part in url.split(";")):
        if not chunk:
            continue
        if not chunk.startswith(SENTINEL_SCHEME):
            raise ConfigError(redact(f"every address of a Sentinel URL starts with sentinel://, not {chunk!r}"))
        try:
            parts = urlsplit(chunk)
            port = parts.port or DEFAULT_SENTINEL_PORT
        except ValueError as exc:
            raise ConfigError(redact(f"malformed Sentinel address {chunk!r}: {exc}")) from None
        if not parts.hostname:
            raise ConfigError(redact(f"Sentinel address {chunk!r} names no host"))
        hosts.append((parts.hostname, port))
        path = parts.path.strip("/")
        if path:
            if not path.isdigit():
                raise ConfigError(redact(f"the database of Sentinel address {chunk!r} is not a number"))
            dbs.add(int(path))
        if parts.username or parts.password:
            credentials.add((_unquoted(parts.username), _unquoted(parts.password)))
    if not hosts:
        raise ConfigError("the Sentinel URL names no sentinel")
    if len(dbs) > 1 or len(credentials) > 1:
        raise ConfigError(redact(f"the addresses of {url!r} disagree on the database or the credentials"))
    username, password = next(iter(credentials), (None, None))
    return SentinelAddress(tuple(hosts), next(iter(dbs), 0), username, password)


def _unquoted(part: str | None) -> str | None:
    return unquote(part) if part else None


def sentinel_url(url: str) -> str:
    """`url` with the database and the credentials written on every address (what kombu and Celery need);
    any other URL unchanged."""
    if not is_sentinel_url(url):
        return url
    address = parse_sentinel_url(url)
    user = quote(address.username or "", safe="")
    userinfo = f"{user}:{quote(address.password, safe='')}@" if address.password else f"{user}@" if user else ""
    return ";".join(f"{SENTINEL_SCHEME}{userinfo}{host}:{port}/{address.db}" for host, port in address.hosts)


class SentinelRedis(redis.Redis):
    """A client of the current master, as the sentinels name it; closing it closes the sentinel connections too."""

    def close(self) -> None:
        manager = getattr(self.connection_pool, "sentinel_manager", None)
        super().close()
        if manager is not None and hasattr(manager, "close"):  # redis-py >= 8.1
            manager.close()


def connect(
    url: str,
    *,
    sentinel: SentinelOptions | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    connect_timeout_s: float | None = None,
) -> redis.Redis:
    """A redis-py client for `url` with bounded socket timeouts (no call can hang a worker forever).

    For a `sentinel://` URL (`sentinel` must then name the master) the client follows the master through a
    failover: each new connection asks the sentinels where the master is now."""
    connect_timeout = connect_timeout_s if connect_timeout_s is not None else min(timeout_s, 5.0)
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=connect_timeout)
    if sentinel is None:
        raise ConfigError(redact(f"{url} is a Sentinel URL: WASMQ_SENTINEL_MASTER must name the master"))
    address = parse_sentinel_url(url)
    manager = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        list(address.hosts),
        sentinel_kwargs=sentinel.sentinel_kwargs(timeout_s),
        socket_timeout=timeout_s,
        socket_connect_timeout=connect_timeout,
    )
    credentials = {k: v for k, v in (("username", address.username), ("password", address.password)) if v}
    client: redis.Redis = manager.master_for(  # type: ignore[no-untyped-call]
        sentinel.master, redis_class=SentinelRedis, db=address.db, **credentials
    )
    return client
