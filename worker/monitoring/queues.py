"""How many messages wait in a queue, and how many dead letters it has: read at scrape or status time."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis

from ..config import Settings
from ..connections import connect, is_redis_url
from ..keys import dead_entries_key

log = logging.getLogger("wasmq.monitoring")
TIMEOUT_S = 2.0  # read at scrape time: never hold a scrape long


def queue_depths(settings: Settings, queues: Iterable[str]) -> dict[str, int | None]:
    """Messages waiting in each queue (not yet taken by a worker); None where the broker did not say.

    With Redis, Celery keeps a queue's waiting messages in a list named after the queue (the same list the
    KEDA scaler watches). Other brokers (RabbitMQ) answer a passive queue declaration.
    """
    names = sorted(set(queues))
    if not names:
        return {}
    if is_redis_url(settings.broker):
        try:
            with connect(settings.broker, sentinel=settings.sentinel, timeout_s=TIMEOUT_S) as client:
                pipe = client.pipeline(transaction=False)
                for name in names:
                    pipe.llen(name)
                return {name: int(n) for name, n in zip(names, pipe.execute(), strict=True)}
        except redis.RedisError as exc:
            log.debug("queue depth unavailable: %s", exc)
            return dict.fromkeys(names)
    return _declared_depths(settings.broker, names)


def _declared_depths(url: str, names: list[str]) -> dict[str, int | None]:
    from kombu.connection import Connection

    out: dict[str, int | None] = dict.fromkeys(names)
    try:
        with Connection(url, connect_timeout=2) as conn:  # type: ignore[no-untyped-call]
            channel = conn.default_channel
            for name in names:
                try:
                    out[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
                except Exception:  # no such queue (yet), or the channel closed on us
                    channel = conn.channel()
    except Exception as exc:
        log.debug("queue depth unavailable: %s", exc)
    return out


def dead_letter_sizes(settings: Settings, queues: Iterable[str]) -> dict[str, int | None]:
    """Entries in each queue's dead-letter queue; None when Redis did not answer."""
    names = sorted(set(queues))
    try:
        with connect(settings.redis_url, sentinel=settings.sentinel, timeout_s=TIMEOUT_S) as client:
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.hlen(dead_entries_key(name))
            return {name: int(n) for name, n in zip(names, pipe.execute(), strict=True)}
    except redis.RedisError as exc:
        log.debug("dead-letter size unavailable: %s", exc)
        return dict.fromkeys(names)
