"""Who holds which unacknowledged message: kombu's Redis QoS, with the holder recorded per delivery tag.

kombu records a message it delivers in the `unacked` hash and the `unacked_index` sorted set and gives it
back to its queue only once the visibility timeout has passed, without saying which node holds it. Here each
delivery also records, in the same MULTI, `HOLDERS_KEY[tag] = node`, so that when a node dies another node
can hand back exactly its messages, at once (`hand_back`, called by worker/queue/liveness.py).

The record also keeps a node that comes back after being declared dead from doing harm. Delivery tags
survive redelivery: the message it was running may by now be held by another node under the same tag. So an
ack, a reject or a requeue touches kombu's records only while this node is still the recorded holder (or no
holder is recorded at all), in one atomic step; otherwise it changes nothing in Redis. The visibility-timeout
sweep, the backstop, stays kombu's: it gives back any message past the timeout, whoever holds it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from ..keys import HOLDERS_KEY, node_alive_key

# KEYS: unacked, unacked_index, holders; ARGV: delivery tag, this node ('' for none).
FORGET_IF_HELD = """
local holder = redis.call('HGET', KEYS[3], ARGV[1])
if holder and holder ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""


class HolderQoS(kombu_redis.QoS):  # type: ignore[misc]
    """kombu's Redis QoS, recording this node as the holder of what it delivers (see the module docstring)."""

    _sweeping = False
    _forget_script: Any = None

    @property
    def node(self) -> str | None:
        node: str | None = self.channel.holder
        return node

    def append(self, message: Any, delivery_tag: str) -> None:
        delivery = message.delivery_info
        node = self.node
        with self.pipe_or_acquire() as pipe:
            pipe.zadd(self.unacked_index_key, {delivery_tag: time.time()})
            entry = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
            pipe.hset(self.unacked_key, delivery_tag, entry)
            if node:
                pipe.hset(HOLDERS_KEY, delivery_tag, node)
            pipe.execute()
        virtual.QoS.append(self, message, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        self.forget(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if requeue:
            self.restore_by_tag(delivery_tag, leftmost=True)
        else:
            self.forget(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def forget(self, delivery_tag: str) -> bool:
        """Drop kombu's records of `delivery_tag` if this node still holds it; whether it did."""
        with self.channel.conn_or_acquire() as client:
            script = self._forget_script
            if script is None:
                script = self._forget_script = client.register_script(FORGET_IF_HELD)
            keys = [self.unacked_key, self.unacked_index_key, HOLDERS_KEY]
            return bool(script(keys=keys, args=[delivery_tag, self.node or ""], client=client))

    def _remove_from_indices(self, delivery_tag: str, pipe: Any = None) -> Any:
        return super()._remove_from_indices(delivery_tag, pipe).hdel(HOLDERS_KEY, delivery_tag)

    def restore_by_tag(self, tag: Any, client: Any = None, leftmost: bool = False) -> None:
        node = self.node

        def restore_transaction(pipe: Any) -> None:
            holder = pipe.hget(HOLDERS_KEY, tag)
            if not self._sweeping and holder is not None and bytes_to_str(holder) != node:
                pipe.multi()  # another node took it since: not ours to give back
                return
            raw = pipe.hget(self.unacked_key, tag)
            pipe.multi()
            self._remove_from_indices(tag, pipe)
            if raw:
                payload, exchange, routing_key = loads(bytes_to_str(raw))
                self.channel._do_restore_message(payload, exchange, routing_key, pipe, leftmost)

        with self.channel.conn_or_acquire(client) as conn:
            conn.transaction(restore_transaction, self.unacked_key, HOLDERS_KEY)

    def restore_visible(self, *args: Any, **kwargs: Any) -> None:
        self._sweeping = True  # the backstop: past the visibility timeout, whoever holds it
        try:
            super().restore_visible(*args, **kwargs)
        finally:
            self._sweeping = False


@dataclass(frozen=True)
class HandedBack:
    """One message given back to its queue(s) on behalf of a dead node."""

    tag: str
    job_id: str | None
    queues: tuple[str, ...]


def hand_back(channel: Any, node: str) -> list[HandedBack] | None:
    """Give every message `node` holds back to its queue, first in line; None (and stop) as soon as the node
    turns out to be alive again. Each message moves in one transaction that also checks, atomically, that
    the node is still silent and still its holder, so a node coming back at any moment loses nothing and
    nothing is given back twice."""
    out: list[HandedBack] = []
    with channel.conn_or_acquire() as client:
        wanted = node.encode()
        tags = [bytes_to_str(tag) for tag, holder in client.hscan_iter(HOLDERS_KEY, count=1000) if holder == wanted]
        for tag in tags:
            alive, handed = _hand_back_one(channel, client, node, tag)
            if alive:
                return None
            if handed is not None:
                out.append(handed)
    return out


def _hand_back_one(channel: Any, client: Any, node: str, tag: str) -> tuple[bool, HandedBack | None]:
    """(whether `node` is alive after all, the message of `tag` if it was handed back)."""
    alive_key = node_alive_key(node)
    outcome: list[tuple[bool, HandedBack | None]] = []

    def move(pipe: Any) -> None:
        outcome[:] = [(False, None)]  # the transaction may run again (a watched key changed)
        if pipe.exists(alive_key):
            outcome[:] = [(True, None)]
            pipe.multi()
            return
        holder = pipe.hget(HOLDERS_KEY, tag)
        if holder is None or bytes_to_str(holder) != node:
            pipe.multi()  # acked, or handed back, meanwhile
            return
        raw = pipe.hget(channel.unacked_key, tag)
        pipe.multi()
        pipe.zrem(channel.unacked_index_key, tag).hdel(channel.unacked_key, tag).hdel(HOLDERS_KEY, tag)
        if raw:
            payload, exchange, routing_key = loads(bytes_to_str(raw))
            job_id = (payload.get("headers") or {}).get("id")
            queues = tuple(channel._lookup(exchange, routing_key))
            channel._do_restore_message(payload, exchange, routing_key, pipe, False)
            outcome[:] = [(False, HandedBack(tag, str(job_id) if job_id else None, queues))]

    client.transaction(move, channel.unacked_key, HOLDERS_KEY, alive_key)
    return outcome[0]
