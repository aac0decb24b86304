"""Many hosts on one machine: network namespaces joined to the root namespace by veth pairs, and a throwaway
Redis every namespace can reach (optionally with an append-only file and ACL users, restartable on its data).

Where the machine allows it (root, `ip netns`, veth pairs) every node gets a namespace of its own, with its
own address, and reaches Redis at the root-namespace end of its veth pair; otherwise nodes are plain
processes on 127.0.0.1 (`WASMQ_TEST_NETNS=0` forces that). Addresses: 127.0.0.1 and 10.250.X.0/24 on veth
pairs made here (nothing leaves the machine). Everything made here is removed by name or pid at teardown.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from worker.devtools.embedded_redis import end_process, find_redis_server, free_port

# The `default` user of a Redis with ACL users: every permission (see worker/keys.py on why it must keep them).
ADMIN_ACL = "resetkeys ~* resetchannels &* +@all"


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=False, capture_output=True, text=True, timeout=10)


@dataclass
class Network:
    """Where each node runs and which address it uses to reach Redis."""

    mode: str  # "netns" or "processes"
    redis_binds: list[str]
    node_redis_hosts: list[str]
    namespaces: list[str | None]
    node_addresses: list[str]
    why: str = ""
    _links: list[str] = field(default_factory=list)

    def teardown(self) -> None:
        for link in self._links:
            _ip("link", "del", link)
        for ns in self.namespaces:
            if ns:
                _ip("netns", "del", ns)

    def prefix(self, index: int) -> list[str]:
        """The command prefix that runs a process as node `index` (in its namespace, if it has one)."""
        ns = self.namespaces[index]
        return ["ip", "netns", "exec", ns] if ns else []

    def describe(self, port: int) -> str:
        if self.mode == "netns":
            return (
                f"network namespaces {', '.join(str(n) for n in self.namespaces)} at {', '.join(self.node_addresses)}, "
                f"Redis on {', '.join(self.redis_binds)}:{port}"
            )
        return f"plain processes on 127.0.0.1 ({self.why})"


def plain_network(nodes: int, why: str) -> Network:
    loop = ["127.0.0.1"] * nodes
    return Network("processes", ["127.0.0.1"], loop, [None] * nodes, loop, why=why)


def _free_subnet() -> int | None:
    """A third octet X such that nothing on this machine uses 10.250.X.0/24 yet."""
    used = _ip("-4", "addr").stdout + _ip("-4", "route").stdout
    for _ in range(20):
        octet = random.randrange(1, 255)
        if f"10.250.{octet}." not in used:
            return octet
    return None


def namespaced_network(nodes: int) -> Network:
    """`nodes` namespaces, each joined to the root namespace by a veth pair with a /30 of its own."""
    if os.environ.get("WASMQ_TEST_NETNS") == "0":
        return plain_network(nodes, "WASMQ_TEST_NETNS=0")
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return plain_network(nodes, "network namespaces need root and iproute2")
    octet = _free_subnet()
    if octet is None:
        return plain_network(nodes, "no free 10.250.X.0/24 subnet")
    token = uuid.uuid4().hex[:6]
    net = Network("netns", ["127.0.0.1"], [], [], [])
    try:
        for i in range(nodes):
            ns, root_end, ns_end = f"wasmq-{token}-{i}", f"wq{token}r{i}", f"wq{token}n{i}"
            root_ip, ns_ip = f"10.250.{octet}.{4 * i + 1}", f"10.250.{octet}.{4 * i + 2}"
            steps = [
                ("netns", "add", ns),
                ("link", "add", root_end, "type", "veth", "peer", "name", ns_end, "netns", ns),
                ("addr", "add", f"{root_ip}/30", "dev", root_end),
                ("link", "set", root_end, "up"),
                ("-n", ns, "addr", "add", f"{ns_ip}/30", "dev", ns_end),
                ("-n", ns, "link", "set", ns_end, "up"),
                ("-n", ns, "link", "set", "lo", "up"),
            ]
            for step in steps:
                done = _ip(*step)
                if step[0] == "netns":
                    net.namespaces.append(ns)
                elif step[0] == "link" and step[1] == "add":
                    net._links.append(root_end)
                if done.returncode != 0:
                    raise OSError(f"ip {' '.join(step)}: {done.stderr.strip()}")
            net.redis_binds.append(root_ip)
            net.node_redis_hosts.append(root_ip)
            net.node_addresses.append(ns_ip)
    except (OSError, subprocess.SubprocessError) as exc:
        net.teardown()
        return plain_network(nodes, f"could not build namespaces ({exc})")
    return net


class RedisServer:
    """A throwaway redis-server bound to the given addresses (EmbeddedRedis binds 127.0.0.1 only).

    `users` maps a Redis user to (password, ACL rules), `default` included (the URL of `start`'s readiness
    check); `appendonly` keeps an AOF (fsync always), so that `restart()` brings back every acknowledged write."""

    def __init__(
        self, binds: list[str], *, appendonly: bool = False, users: dict[str, tuple[str, str]] | None = None
    ) -> None:
        self.binds = binds
        self.users = users or {}
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="wasmq-redis-net-"))
        self.args = [
            find_redis_server(), "--port", str(self.port), "--bind", *binds, "--protected-mode", "no",
            "--save", "", "--appendonly", "yes" if appendonly else "no", "--appendfsync", "always",
            "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        for user, (password, rules) in self.users.items():
            self.args += ["--user", user, "on", f">{password}", *rules.split()]
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url(user="default"), socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.dir / "redis.log").read_text(errors="replace")[-1500:]
                    self.stop()
                    raise redis.exceptions.ConnectionError(f"redis-server did not start: {log}") from None
                time.sleep(0.05)
        client.close()

    def url(self, host: str = "127.0.0.1", *, user: str | None = None) -> str:
        """A URL as `user` (its password from `users`), or without credentials."""
        if user is None or user not in self.users:
            return f"redis://{host}:{self.port}/0"
        return f"redis://{quote(user)}:{quote(self.users[user][0])}@{host}:{self.port}/0"

    def restart(self) -> None:
        """Stop the server (SIGTERM) and start it again on its data: what a Redis restart mid-way looks like."""
        self._halt()
        self.start()

    def _halt(self) -> None:
        if self.proc is not None:
            end_process(self.proc)

    def stop(self) -> None:
        self._halt()
        shutil.rmtree(self.dir, ignore_errors=True)


def _reachable_from_namespaces(net: Network, port: int) -> str | None:
    for ns, host in zip(net.namespaces, net.node_redis_hosts, strict=True):
        probe = f"import socket; socket.create_connection(({host!r}, {port}), timeout=3).close()"
        done = subprocess.run(
            ["ip", "netns", "exec", str(ns), sys.executable, "-c", probe],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode != 0:
            return f"Redis at {host}:{port} unreachable from {ns}: {done.stderr.strip()[-300:]}"
    return None


def network_and_redis(
    nodes: int, *, appendonly: bool = False, users: dict[str, tuple[str, str]] | None = None
) -> tuple[Network, RedisServer]:
    """Namespaces if possible, and a Redis every node can reach; plain processes on 127.0.0.1 otherwise."""
    net = namespaced_network(nodes)

    def server(binds: list[str]) -> RedisServer:
        return RedisServer(binds, appendonly=appendonly, users=users)

    if net.mode == "processes":
        return net, server(net.redis_binds)
    try:
        found = server(net.redis_binds)
    except (OSError, redis.exceptions.ConnectionError) as exc:
        net.teardown()
        net = plain_network(nodes, f"redis-server could not bind the veth addresses ({exc})")
        return net, server(net.redis_binds)
    problem = _reachable_from_namespaces(net, found.port)
    if problem:
        found.stop()
        net.teardown()
        net = plain_network(nodes, problem)
        found = server(net.redis_binds)
    return net, found


def report(request: pytest.FixtureRequest, line: str) -> None:
    """A line in the session's output even while pytest captures output."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(line)
