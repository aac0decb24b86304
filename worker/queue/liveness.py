"""Liveness: each worker node keeps a heartbeat in Redis; when one stops, another node hands the messages it
held back to their queues, seconds after it went silent instead of a visibility timeout (an hour) later.

- The heartbeat (thread `wasmq-heartbeat` in the node's main process; jobs run in pool processes and cannot
  hold it up) sets `node_alive_key(node)` every third of `WASMQ_NODE_TIMEOUT_S`, with that timeout as its
  TTL, so the key's expiry runs on Redis's clock (no skew between hosts), and keeps the node's entry in the
  registry (`NODES_KEY`: name, pid, host, queues, timeout, last beat).
- The reaper (thread `wasmq-reaper`, every node runs one) looks for registered nodes whose key has expired.
  Under `REAPER_LOCK_KEY` (one node at a time) it hands back each one's messages (worker/queue/unacked.py
  records who holds what), removes it from the registry and records the event per queue
  (worker/monitoring/nodes.py) for `wasmq status` and the metrics.
- Never wrong about the living. A node judges another only after its own heartbeat has been succeeding,
  without a gap, for the other node's whole timeout: after Redis was away (or this node was paused) every
  live node needs that long to renew its key. A node that is slow, or busy with a long job, keeps beating.
  A node that comes back after being declared dead registers again and carries on; its late acks and
  requeues change nothing that is no longer its own (unacked.py), and a message handed back while it was
  silent may run twice, never zero times (results are per job id).
- The visibility timeout stays, as the backstop.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import redis

from ..config import Settings
from ..connections import CONNECTION_ERRORS, connect
from ..keys import HOLDERS_KEY, NODES_KEY, REAPER_LOCK_KEY, node_alive_key
from ..monitoring import nodes
from .unacked import HandedBack, hand_back

log = logging.getLogger("wasmq.liveness")
LOCK_S = 60  # the reaper's lock expires on its own if the node holding it dies mid-way
_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, redis.RedisError, OSError)


def check_interval(timeout_s: float) -> float:
    """How often a reaper looks for dead nodes: a fifth of the node timeout, within [0.2, 5] s."""
    return min(5.0, max(0.2, timeout_s / 5))


class Liveness:
    """This node's heartbeat and reaper. `connection` makes a kombu connection to the broker (the worker's
    app's), through which handed-back messages are routed exactly as kombu routes them."""

    def __init__(
        self,
        settings: Settings,
        *,
        name: str,
        queues: Sequence[str] = (),
        connection: Callable[[], Any] | None = None,
        client: redis.Redis | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.node_id = f"{name}#{uuid.uuid4().hex[:8]}"
        self.timeout_s = settings.node_timeout_s
        self.beat_s = self.timeout_s / 3
        self.check_s = check_interval(self.timeout_s)
        self.info = {"name": name, "pid": os.getpid(), "host": socket.gethostname(), "queues": sorted(set(queues)),
                     "timeout_s": self.timeout_s, "started_at": round(time.time(), 3),
                     # which queue each lane's messages count under (a batch lane's: its queue's), for whichever
                     # node declares this one dead (it may serve other queues, with other settings)
                     "homes": {q: settings.home_queue(q) for q in sorted(set(queues))}}  # fmt: skip
        self._client = client
        self._make_connection = connection
        self._connection: Any = None
        self._clock = clock
        self._steady_since: float | None = None
        self._last_beat: float | None = None
        self._beats = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            budget = max(0.5, min(5.0, self.beat_s))  # a beat never blocks past the next one
            self._client = connect(self.settings.broker, sentinel=self.settings.sentinel, timeout_s=budget)
        return self._client

    # -- the heartbeat ------------------------------------------------------------------------------

    def beat(self) -> bool:
        """Renew this node's key and registry entry; whether Redis took it."""
        now = self._clock()
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.set(node_alive_key(self.node_id), "1", px=max(1, round(self.timeout_s * 1000)))
            pipe.hset(NODES_KEY, self.node_id, json.dumps({**self.info, "beat_at": round(time.time(), 3)}))
            _, added = pipe.execute()
        except _ERRORS as exc:
            if self._steady_since is not None:
                log.warning("heartbeat failed, retrying every %.1f s: %s", self.beat_s, exc)
            self._steady_since = None
            return False
        if self._steady_since is None or self._last_beat is None or now - self._last_beat > self.timeout_s:
            self._steady_since = now  # the first beat, or the first after a gap: start watching anew
        self._last_beat = now
        if added and self._beats:
            log.warning(
                "this node (%s) was declared dead while it was silent: the messages it held were handed back "
                "to their queues; it carries on", self.node_id,
            )  # fmt: skip
        self._beats += 1
        return True

    def steady_for(self, seconds: float) -> bool:
        """Whether this node's heartbeat has been succeeding, without a gap, for `seconds`."""
        now = self._clock()
        since, last = self._steady_since, self._last_beat
        return since is not None and last is not None and now - last <= self.timeout_s and now - since >= seconds

    # -- the reaper ---------------------------------------------------------------------------------

    def find_dead(self) -> list[tuple[str, dict[str, Any]]]:
        """Registered nodes whose key has expired, that this node has watched long enough to judge."""
        registry = {_text(k): v for k, v in self.client.hgetall(NODES_KEY).items()}
        others = sorted(node for node in registry if node != self.node_id)
        if not others:
            return []
        pipe = self.client.pipeline(transaction=False)
        for node in others:
            pipe.exists(node_alive_key(node))
        dead = []
        for node, alive in zip(others, pipe.execute(), strict=True):
            info = _info(registry[node])
            timeout = _number(info.get("timeout_s")) or self.timeout_s
            if not alive and self.steady_for(max(timeout, self.timeout_s)):
                dead.append((node, info))
        return dead

    def reap(self) -> list[nodes.DeadNode]:
        """Hand back the messages of every dead node (one reaper at a time); the events recorded."""
        if not self.find_dead():
            return []
        lock = self.client.lock(REAPER_LOCK_KEY, timeout=LOCK_S)
        if not lock.acquire(blocking=False):
            return []  # another node is at it
        try:
            events: list[nodes.DeadNode] = []
            channel = self._channel()
            for node, info in self.find_dead():  # looked up again under the lock: another reaper may be done
                returned = hand_back(channel, node)
                if returned is None:
                    log.info("node %s is beating again: nothing of it handed back", node)
                    continue
                events += self._declare_dead(node, info, returned)
            return events
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:
                pass  # expired meanwhile

    def _declare_dead(self, node: str, info: dict[str, Any], returned: list[HandedBack]) -> list[nodes.DeadNode]:
        listed = info.get("queues")
        named = [q for q in listed if isinstance(q, str)] if isinstance(listed, list) else []
        # One event per queue served: a batch lane's messages count under the queue it serves, as the dead node
        # itself registered it (its settings, not the reaper's).
        registered = info.get("homes")
        homes: dict[str, Any] = registered if isinstance(registered, dict) else {}

        def home(queue: str) -> str:
            mapped = homes.get(queue)
            return mapped if isinstance(mapped, str) else queue

        queues = sorted({*map(home, named), *(home(q) for r in returned for q in r.queues)})
        now = time.time()
        events = [self._event(node, info, [r for r in returned if queue in map(home, r.queues)], now)
                  for queue in queues]  # fmt: skip
        alive_key = node_alive_key(node)

        recorded: list[nodes.DeadNode] = []

        def deregister(pipe: Any) -> None:
            silent = not pipe.exists(alive_key)
            registered = pipe.hexists(NODES_KEY, node)
            # Nothing to say of a node that is back with nothing handed back, or that has left meanwhile.
            recorded[:] = events if registered and (silent or returned) else []
            pipe.multi()
            if silent and registered:
                pipe.hdel(NODES_KEY, node)
            for queue, event in zip(queues, recorded, strict=False):
                nodes.record(pipe, queue, event)

        self.client.transaction(deregister, alive_key, NODES_KEY)
        if not recorded:
            return []
        silent_s = f"{now - events[0].last_beat_at:.1f} s" if events and events[0].last_beat_at else "a while"
        log.warning(
            "node %s declared dead (silent for %s): %d messages handed back to their queues%s", node, silent_s,
            len(returned), f" ({', '.join(r.job_id or r.tag for r in returned[:5])}...)" if returned else "",
        )  # fmt: skip
        return events

    def _event(self, node: str, info: dict[str, Any], returned: list[HandedBack], now: float) -> nodes.DeadNode:
        return nodes.DeadNode(
            node=node, name=str(info.get("name") or node.rpartition("#")[0]), pid=_int(info.get("pid")),
            host=str(info["host"]) if info.get("host") else None, declared_at=now,
            last_beat_at=_number(info.get("beat_at")), by=self.node_id, messages=len(returned),
            job_ids=[r.job_id for r in returned if r.job_id][: nodes.SHOWN_JOB_IDS],
        )  # fmt: skip

    def _channel(self) -> Any:
        if self._connection is None:
            connection = self._make_connection() if self._make_connection else None
            if connection is None:
                raise RuntimeError("this node's liveness has no broker connection to hand messages back through")
            connection.ensure_connection(max_retries=1)
            self._connection = connection
        return self._connection.default_channel

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # a connection that failed may fail to close as well
                pass

    # -- running ------------------------------------------------------------------------------------

    def start(self) -> Liveness:
        """Beat once now (best effort), then keep beating and reaping in two daemon threads."""
        self.beat()
        self._spawn("wasmq-heartbeat", self.beat_s, self.beat)
        if self._make_connection is not None:
            self._spawn("wasmq-reaper", self.check_s, self._reap_safely)
        return self

    def _spawn(self, name: str, every_s: float, step: Callable[[], object]) -> None:
        def run() -> None:
            while not self._stop.wait(every_s):
                try:
                    step()
                except Exception:  # a bug must not end the thread (a silent heartbeat gets a live node reaped)
                    log.exception("%s failed; trying again in %.1f s", name, every_s)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _reap_safely(self) -> None:
        try:
            self.reap()
        except _ERRORS as exc:
            log.debug("reaper: broker unavailable: %s", exc)
            self._drop_connection()
        except Exception:
            self._drop_connection()
            raise

    def stop(self, timeout: float = 5.0) -> None:
        """Stop beating and leave the registry. At shutdown kombu has given back what this node had not
        run; what it still holds is what it could not acknowledge (an ack on a connection that broke): that
        is handed back here, and if even that fails, left for another node to hand back."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        try:
            self.client.delete(node_alive_key(self.node_id))
            returned = hand_back(self._channel(), self.node_id) if self._make_connection is not None else None
            if returned:
                log.info("handed back %d messages this node could not acknowledge", len(returned))
            mine = self.node_id.encode()
            left = sum(1 for _, holder in self.client.hscan_iter(HOLDERS_KEY, count=1000) if holder == mine)
            if left:
                log.warning("leaving with %d unacknowledged messages held: another node hands them back", left)
            else:
                self.client.hdel(NODES_KEY, self.node_id)
        except _ERRORS as exc:
            log.warning("could not leave the node registry (another node will declare this one dead): %s", exc)
        finally:
            self._drop_connection()
            if self._client is not None:
                self._client.close()


def _text(raw: Any) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def _info(raw: Any) -> dict[str, Any]:
    try:
        info = json.loads(raw)
    except (ValueError, TypeError):
        return {}
    return info if isinstance(info, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
