"""kombu's Redis transport, hardened against envelopes that are not kombu messages, and against a crash of
its own after a broker restart.

A foreign producer can LPUSH anything onto the queue list. kombu decodes each popped item with `json.loads`
inside the worker's event loop and lets the error escape, which Celery treats as unrecoverable: one stray
byte string takes a whole worker down, and so does an envelope whose delivery tag is an object (unhashable),
whose body encoding is unknown, or whose JSON is nested past the decoder's limit. This channel bounds the
entry's size before decoding it, checks every envelope field kombu relies on (`check_envelope`), and
dead-letters what is not a message (the item is already popped, so nothing else would ever see it). What
the envelope carries (headers, body) is checked by the consumer, for every broker (worker/queue/intake.py).

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

from ..config import get_settings
from . import state
from .dead_lettering import record_bad_envelope
from .unacked import HolderQoS

HEADROOM = 4 * 1024 * 1024  # an envelope's headers and properties, besides its base64 body
BODY_ENCODINGS = (None, "base64", "utf-8", "UTF-8")


def envelope_limit(max_message_bytes: int) -> int:
    """Bytes a queue entry may have: a body at the message limit in base64, plus headers and properties."""
    return max_message_bytes * 4 // 3 + HEADROOM


def _text(where: str, value: Any, *, optional: bool = True, empty: bool = True, limit: int = 255) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or len(value) > limit or (not empty and not value):
        raise ValueError(f"envelope {where} must be a string of at most {limit} characters")


def check_envelope(payload: Any) -> None:
    """Raise ValueError unless `payload` has, with the right types, what kombu's Message and QoS need."""
    if not isinstance(payload, dict):
        raise ValueError(f"envelope is a JSON {type(payload).__name__}, not an object")
    properties = payload.get("properties")
    if not isinstance(properties, dict) or "delivery_tag" not in properties:
        raise ValueError("envelope has no 'properties' object with a 'delivery_tag'")
    _text("delivery_tag", properties["delivery_tag"], optional=False, empty=False)
    if properties.get("body_encoding") not in BODY_ENCODINGS:
        raise ValueError("envelope body_encoding must be base64 or utf-8")
    info = properties.get("delivery_info")
    if not isinstance(info, dict):
        raise ValueError("envelope has no 'delivery_info' object")
    for key in ("exchange", "routing_key"):  # kombu's QoS reads both, and a restore looks them up
        _text(f"delivery_info {key}", info.get(key), optional=False)
    headers = payload.get("headers")
    if headers is not None and not isinstance(headers, dict):
        raise ValueError("envelope 'headers' is not an object")
    for key in ("content-type", "content-encoding"):
        _text(key, payload.get(key))
    body = payload.get("body")
    if body is not None and not isinstance(body, str):
        raise ValueError(f"envelope body must be a string, not {type(body).__name__}")


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
            options = getattr(self.connection.client, "transport_options", None) or {}
            limit = envelope_limit(options.get("wasmq_max_message_bytes") or get_settings().max_message_bytes)
            if len(item) > limit:
                record_bad_envelope(item, dest, ValueError(f"entry of {len(item)} bytes is above {limit} bytes"))
                return True
            try:
                payload = loads(bytes_to_str(item))
                check_envelope(payload)
            except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
                record_bad_envelope(item, dest, exc)
                return True
            try:
                self.connection._deliver(payload, dest)
            except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
                # a body kombu cannot even wrap as a Message; if kombu already holds it as unacked, let it go
                record_bad_envelope(item, dest, exc)
                tag = payload["properties"]["delivery_tag"]
                if tag in self.qos._delivered:
                    self.qos.ack(tag)
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
