"""The shared module registry in Redis: module bytes stored once by sha256, immutable `name@version` entries.

Keys (worker/keys.py): a hash per module name (version -> JSON entry), a set of names, a revision counter,
one blob per content (worker/catalog/blobs.py), and a pub/sub channel on which every change is announced.
An entry is written by one compare-and-set script that also counts the revision and announces the change,
so a publication is all there or not at all, two publishers racing for one version cannot both win, and a
yanked entry is never replaced (its bytes stay, for the jobs that were running). Reading needs only read
access to the registry keys (workers, producers); writing goes through the publisher's connection, whose
Redis ACL user may write them (`REGISTRY_PUBLISHER_ACL`): anyone else gets `PublishDenied`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import redis
from redis.exceptions import NoPermissionError

from ..config import Settings
from ..connections import CONNECTION_ERRORS, SentinelOptions, connect, redact
from ..errors import ConfigError, ModuleRejected, PublishDenied, RegistryUnavailable
from ..keys import REGISTRY_CHANNEL, REGISTRY_NAMES, REGISTRY_REV, registry_blob_key, registry_module_key
from ..spec import MIB, ModuleSpec
from .blobs import get_blob, put_blob, text
from .entry import entry_from_spec, spec_from_entry

T = TypeVar("T")

# KEYS: module hash, names set, revision counter, blob. ARGV: version, the JSON expected there now ('' for
# none), the new JSON, name, channel, action, '1' if the blob must exist. Answers {1, rev} or {0, current}.
_SET_ENTRY = """
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current ~= ARGV[2] then return {0, current} end
if ARGV[7] == '1' and redis.call('EXISTS', KEYS[4]) == 0 then return redis.error_reply('blob missing') end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
local rev = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[5], cjson.encode({rev = rev, name = ARGV[4], version = ARGV[1], action = ARGV[6]}))
return {1, rev}
"""


@dataclass(frozen=True)
class Yank:
    at: str
    by: str
    reason: str = ""

    def describe(self) -> str:
        return f"yanked at {self.at} by {self.by}" + (f": {self.reason}" if self.reason else "")


@dataclass(frozen=True)
class Entry:
    """One `name@version` of the registry: the publication, who published it and when, its yank if any."""

    spec: ModuleSpec
    size: int
    published_by: str
    published_at: str
    yanked: Yank | None = None
    raw: str = field(default="", compare=False, repr=False)  # the JSON it was read from (compare-and-set)

    def to_json(self) -> str:
        data = entry_from_spec(self.spec) | {
            "size": self.size,
            "published_by": self.published_by,
            "published_at": self.published_at,
            "yanked": None if self.yanked is None else vars(self.yanked),
        }
        return json.dumps(data, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: bytes | str, where: str) -> Entry:
        """Parse a stored entry; a malformed one is a `ConfigError` naming it."""
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{where}: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: not a JSON object")
        spec = spec_from_entry(data, where, path=None, wit=data.get("wit"))
        size, by, at, yanked = (data.get(k) for k in ("size", "published_by", "published_at", "yanked"))
        if not isinstance(size, int) or size < 0 or not isinstance(by, str) or not isinstance(at, str):
            raise ConfigError(f"{where}: needs 'size', 'published_by' and 'published_at'")
        if yanked is not None and not (isinstance(yanked, dict) and {"at", "by"} <= set(yanked)):
            raise ConfigError(f"{where}: 'yanked' must be null or an object with 'at' and 'by'")
        yank = None if yanked is None else Yank(str(yanked["at"]), str(yanked["by"]), str(yanked.get("reason", "")))
        return cls(spec=spec, size=size, published_by=by, published_at=at, yanked=yank)


Stored = Entry | ModuleRejected  # what a version's stored entry is: parsed, or unusable and why


class Registry:
    """Reads (any credential with read access) and writes (a publisher's) of one Redis registry."""

    def __init__(
        self,
        url: str,
        *,
        publisher_url: str | None = None,
        max_module_bytes: int,
        sentinel: SentinelOptions | None = None,
    ) -> None:
        self.url = url
        self.publisher_url = publisher_url or url
        self.max_module_bytes = max_module_bytes
        self.sentinel = sentinel  # with sentinel:// URLs: follow the master through a failover
        self._reader = connect(url, sentinel=sentinel)
        self._writer: redis.Redis | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> Registry:
        """The registry these settings name (read as `registry`, written as `publisher`)."""
        return cls(
            settings.registry, publisher_url=settings.publisher, max_module_bytes=settings.max_module_mb * MIB,
            sentinel=settings.sentinel,
        )  # fmt: skip

    def close(self) -> None:
        self._reader.close()
        if self._writer is not None:
            self._writer.close()

    # -- reading ---------------------------------------------------------------------------------------

    def versions(self, name: str) -> dict[str, Stored]:
        """Every stored version of `name` (yanked ones too); an entry that does not parse is kept as the
        `ModuleRejected` a job for it gets, so one bad entry never hides the others."""
        raw = self._read(lambda r: r.hgetall(registry_module_key(name)))
        return {text(version): _parse(name, text(version), data) for version, data in raw.items()}

    def names(self) -> list[str]:
        return sorted(text(n) for n in self._read(lambda r: r.smembers(REGISTRY_NAMES)))

    def everything(self) -> dict[str, dict[str, Stored]]:
        """Every entry of every name (listing, verifying, warming), in one round trip per 100 names."""
        names, out = self.names(), {}
        for first in range(0, len(names), 100):
            group = names[first : first + 100]

            def fetch(r: redis.Redis, group: list[str] = group) -> list[Any]:
                with r.pipeline(transaction=False) as pipe:
                    for name in group:
                        pipe.hgetall(registry_module_key(name))
                    return list(pipe.execute())

            for name, raw in zip(group, self._read(fetch), strict=True):
                out[name] = {text(v): _parse(name, text(v), data) for v, data in raw.items()}
        return out

    def revision(self) -> int:
        value = self._read(lambda r: r.get(REGISTRY_REV))
        return int(value or 0)

    def blob(self, spec: ModuleSpec) -> bytes:
        """The module bytes of `spec` (the sandbox verifies their sha256 before using them)."""
        found = self._read(
            lambda r: get_blob(
                r, registry_blob_key(spec.sha256), max_bytes=self.max_module_bytes, what=f"module {spec.ref}"
            )
        )
        if found is None:
            raise ModuleRejected(f"module {spec.ref}: the registry holds no bytes with sha256 {spec.sha256}")
        return found[0]

    def read(self, use: Callable[[redis.Redis], T]) -> T:
        """Run `use` on the reading connection, with the registry's errors (artifacts, change notices)."""
        return self._read(use)

    # -- writing (a publisher's credentials) --------------------------------------------------------------

    def whoami(self) -> str:
        """The Redis user this registry writes as (`default` where Redis has no ACL users)."""
        try:
            return text(self._write(lambda w: w.acl_whoami()))
        except PublishDenied:
            return "unknown"

    def put_blob(self, key: str, data: bytes, **fields: str) -> bool:
        return self._write(lambda w: put_blob(w, key, data, **fields))

    def set_entry(self, entry: Entry, *, expected: Stored | None, action: str) -> tuple[bool, Stored | None]:
        """Write `entry` if what is stored for its version is still `expected` (None: nothing); (True, entry) or
        (False, what is stored instead). Publishing needs the blob stored first; a yank does not."""
        spec = entry.spec
        before = "" if expected is None else _raw(expected)
        keys = [registry_module_key(spec.name), REGISTRY_NAMES, REGISTRY_REV, registry_blob_key(spec.sha256)]
        args = [
            spec.version,
            before,
            entry.to_json(),
            spec.name,
            REGISTRY_CHANNEL,
            action,
            "1" if action == "published" else "0",
        ]
        done, current = self._write(lambda w: w.eval(_SET_ENTRY, len(keys), *keys, *args))
        if done:
            return True, entry
        return False, _parse(spec.name, spec.version, current) if current else None

    def writer(self) -> redis.Redis:
        if self._writer is None:
            self._writer = connect(self.publisher_url, sentinel=self.sentinel)
        return self._writer

    # -- errors ---------------------------------------------------------------------------------------------

    def _read(self, use: Callable[[redis.Redis], T]) -> T:
        with self._errors(self.url, "read"):
            return use(self._reader)

    def _write(self, use: Callable[[redis.Redis], T]) -> T:
        with self._errors(self.publisher_url, "write"):
            return use(self.writer())

    @contextmanager
    def _errors(self, url: str, doing: str) -> Iterator[None]:
        try:
            yield
        except NoPermissionError as exc:
            if doing == "write":
                raise PublishDenied(
                    redact(f"the registry at {url} refused the write ({exc}): publishing and yanking need a "
                           "publisher's credentials (WASMQ_PUBLISHER_URL)")
                ) from None  # fmt: skip
            raise ConfigError(
                redact(f"the registry at {url} refused a read ({exc}): this user may not read it")
            ) from None
        except CONNECTION_ERRORS as exc:
            raise RegistryUnavailable(redact(f"module registry unreachable at {url}: {exc}")) from None
        except redis.exceptions.ResponseError as exc:
            raise RegistryUnavailable(redact(f"the registry at {url} answered an error: {exc}")) from None


def _parse(name: str, version: str, raw: bytes | str) -> Stored:
    where = f"registry entry {name}@{version}"
    try:
        entry = Entry.from_json(raw, where)
    except ConfigError as exc:
        return ModuleRejected(f"module {name}@{version} cannot be served: {exc.message}")
    if (entry.spec.name, entry.spec.version) != (name, version):
        return ModuleRejected(f"module {name}@{version}: its stored entry names {entry.spec.ref}")
    return replace(entry, raw=text(raw))


def _raw(stored: Stored) -> str:
    """The exact JSON an entry was read from (what the compare-and-set compares)."""
    if isinstance(stored, ModuleRejected):
        raise ModuleRejected(stored.message)
    return stored.raw or stored.to_json()
