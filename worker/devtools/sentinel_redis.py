"""A throwaway Redis Sentinel setup on loopback ports: one master, its replicas, and three sentinels, every
one a real `redis-server` (sentinels are `redis-server CONFIG --sentinel`), for the tests and for trying a
failover by hand.

`start()` returns once every sentinel knows the master, every replica and the other sentinels (a failover
needs a quorum that has met), and the replicas are in sync. `kill_master()` stops the master (SIGTERM: a
shutdown; SIGKILL: a crash) and `wait_for_failover()` waits until the sentinels name a new one. `stop()`
ends every process and removes every data directory.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from ..connections import connect
from ..errors import ConfigError
from .embedded_redis import EmbeddedRedis, end_process, find_redis_server, free_port

HOST = "127.0.0.1"


class SentinelServer:
    """One sentinel: `redis-server sentinel.conf --sentinel`, with a config file of its own (it rewrites it)."""

    def __init__(self, master: str, master_port: int, *, quorum: int, down_after_ms: int, failover_ms: int) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="wasmq-sentinel-"))
        self.config = self.dir / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\nbind {HOST}\ndir {self.dir}\nlogfile {self.dir / 'sentinel.log'}\n"
            f"sentinel monitor {master} {HOST} {master_port} {quorum}\n"
            f"sentinel down-after-milliseconds {master} {down_after_ms}\n"
            f"sentinel failover-timeout {master} {failover_ms}\n"
            f"sentinel parallel-syncs {master} 1\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [find_redis_server(), str(self.config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def client(self) -> redis.Redis:
        return connect(f"redis://{HOST}:{self.port}/0", timeout_s=2, connect_timeout_s=0.5)

    def log_tail(self) -> str:
        log = self.dir / "sentinel.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            end_process(self.proc)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class SentinelCluster:
    """`with SentinelCluster() as c: c.url, c.master_name` — a master, `replicas` replicas, `sentinels` sentinels."""

    def __init__(
        self,
        *,
        master_name: str = "wasmq",
        replicas: int = 1,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_ms: int = 5000,
    ) -> None:
        self.master_name = master_name
        self.master = EmbeddedRedis()
        self.replicas = [
            EmbeddedRedis(extra_args=["--replicaof", HOST, str(self.master.port)]) for _ in range(replicas)
        ]
        quorum = sentinels // 2 + 1
        self.sentinels = [
            SentinelServer(master_name, self.master.port, quorum=quorum, down_after_ms=down_after_ms,
                           failover_ms=failover_ms)
            for _ in range(sentinels)
        ]  # fmt: skip

    @property
    def url(self) -> str:
        """The `sentinel://` URL of all the sentinels, database 0."""
        return ";".join(f"sentinel://{HOST}:{s.port}" for s in self.sentinels) + "/0"

    @property
    def servers(self) -> list[EmbeddedRedis]:
        return [self.master, *self.replicas]

    def start(self, timeout: float = 60.0) -> SentinelCluster:
        try:
            for server in self.servers:
                server.start()
            for sentinel in self.sentinels:
                sentinel.start()
            self._wait_until_met(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_met(self, deadline: float) -> None:
        want_replicas, want_others = len(self.replicas), len(self.sentinels) - 1
        while True:
            try:
                if self._met(want_replicas, want_others):
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise ConfigError(f"the sentinels did not meet in time:\n{self.sentinels[0].log_tail()}")
            time.sleep(0.1)

    def _met(self, want_replicas: int, want_others: int) -> bool:
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                state = client.sentinel_master(self.master_name)
            if int(state["num-slaves"]) < want_replicas or int(state["num-other-sentinels"]) < want_others:
                return False
        for replica in self.replicas:
            with connect(replica.url, timeout_s=2) as client:
                if client.info("replication").get("master_link_status") != "up":
                    return False
        return True

    def master_address(self) -> tuple[str, int]:
        """Where the sentinels say the master is now (the first sentinel that answers)."""
        for sentinel in self.sentinels:
            try:
                with sentinel.client() as client:
                    host, port = client.sentinel_get_master_addr_by_name(self.master_name)
                    return host.decode() if isinstance(host, bytes) else str(host), int(port)
            except redis.RedisError:
                continue
        raise ConfigError("no sentinel answered")

    def kill_master(self, sig: int = signal.SIGTERM) -> tuple[str, int]:
        """Stop the current master (SIGTERM: shut down; SIGKILL: crash); its address."""
        address = self.master_address()
        for server in self.servers:
            if server.port == address[1]:
                server.kill(sig)
                return address
        raise ConfigError(f"the master {address} is none of this cluster's servers")

    def wait_for_failover(self, old: tuple[str, int], timeout: float = 60.0) -> tuple[str, int]:
        """Block until the sentinels name a master other than `old` and it takes writes; the new address."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                address = self.master_address()
                if address != old:
                    with connect(f"redis://{address[0]}:{address[1]}/0", timeout_s=2) as client:
                        if client.info("replication").get("role") == "master":
                            return address
            except (redis.RedisError, ConfigError):
                pass
            time.sleep(0.1)
        raise ConfigError(f"no failover within {timeout} s:\n{self.sentinels[0].log_tail()}")

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()

    def __enter__(self) -> SentinelCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
