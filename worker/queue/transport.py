"""kombu's Redis transport, hardened against envelopes that are not kombu messages, and against a crash of
its own after a broker restart.

A foreign producer can LPUSH anything onto the queue list. kombu decodes each popped item with `json.loads`
inside the worker's event loop and lets the error escape, which Celery treats as unrecoverable: one stray
byte string takes a whole worker down. This channel checks the envelope first and dead-letters what is
not a message (the item is already popped, so nothing else would ever see it).

It also reuses one redis-py client per channel where kombu would build a new one per publish and per ack,
records which node holds each unacknowledged message (worker/queue/unacked.py, for worker/queue/liveness.py),
and has a Sentinel variant (`sentinel://` URLs) with all of the above.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from queue import Empty
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from redis.exceptions import ConnectionError as RedisConnectionError

from . import state
from .intake import record_bad_envelope
from .unacked import HolderQoS


def _check_envelope(payload: Any) -> None:
    """Raise ValueError unless `payload` has what kombu's Message needs."""
    if not isinstance(payload, dict):
        raise ValueError(f"envelope is a JSON {type(payload).__name__}, not an object")
    properties = payload.get("properties")
    if not isinstance(properties, dict) or "delivery_tag" not in properties:
        raise ValueError("envelope has no 'properties' object with a 'delivery_tag'")
    headers = payload.get("headers")
    if headers is not None and not isinstance(headers, dict):
        raise ValueError("envelope 'headers' is not an object")


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    QoS = HolderQoS
    from_transport_options = (*kombu_redis.Channel.from_transport_options, "wasmq_node")  # type: ignore[assignment]
    wasmq_node: str | None = None  # the holder to record; by default this worker node's (its liveness)
    _shared_client: Any = None

    @property
    def holder(self) -> str | None:
        """The node recorded as holding what this channel delivers (None: none recorded, kombu's behaviour)."""
        return self.wasmq_node or state.holder_node()

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        # kombu builds a new redis-py client for every publish and every ack (and redis-py 8's constructor
        # alone costs about 80 us). A client is only a handle on the connection pool and safe to share;
        # one per channel is kept, and replaced when the channel's pool is (after a fork or a disconnect).
        if client:
            yield client
            return
        pool = self.pool
        shared = self._shared_client
        if shared is None or shared.connection_pool is not pool:
            shared = self._shared_client = self._create_client()
        yield shared

    def _connparams(self, asynchronous: bool = False) -> Any:
        # After a lost broker connection kombu closes the transport, but the old channel is still asked to
        # ack late messages and restore unacked ones; its transport's client is None by then, and the
        # AttributeError that follows is unrecoverable for Celery. A connection error is what it is.
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("this channel's broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)

    def _brpop_read(self, **options: Any) -> bool:
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()  # the next iteration reconnects
                raise
            if not dest__item:
                raise Empty()
            dest, item = dest__item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            try:
                payload = loads(bytes_to_str(item))
                _check_envelope(payload)
            except (ValueError, TypeError, UnicodeDecodeError) as exc:
                record_bad_envelope(item, dest, exc)
                return True
            try:
                self.connection._deliver(payload, dest)
            except (KeyError, binascii.Error) as exc:  # a body kombu cannot even wrap as a Message
                record_bad_envelope(item, dest, exc)
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]
            flush = getattr(self, "_flush_brpop_reauth", None)
            if flush is not None:
                flush()


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel


class SentinelChannel(Channel, kombu_redis.SentinelChannel):  # type: ignore[misc]
    """Ours, with the master found through Redis Sentinel (kombu's SentinelChannel supplies the pool)."""

    from_transport_options = (*kombu_redis.SentinelChannel.from_transport_options, "wasmq_node")  # type: ignore[assignment]


class SentinelTransport(Transport):
    Channel = SentinelChannel
    default_port = kombu_redis.SentinelTransport.default_port  # type: ignore[assignment]
