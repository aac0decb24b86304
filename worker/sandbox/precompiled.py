"""Precompiled artifacts on disk: a module or component is compiled once per machine, and every fresh worker
process deserializes it instead (a fraction of a millisecond instead of several).

An artifact is native code: deserializing it runs whatever it contains. So the cache trusts nothing it has not
written itself and can authenticate:
- the directory must belong to the worker's user and not be writable by group or others; otherwise it is not
  used at all (logged once), and modules are compiled in memory;
- every artifact file carries an HMAC-SHA256 over the module's sha256, its kind (module or component), the
  engine fingerprint (wasmtime version and every engine setting) and the artifact bytes, keyed by a random
  per-machine key: 32 bytes in `.key` inside the directory, created 0600 on first use (an existing key that
  is not a regular 0600 file of the worker's user makes the directory unusable, as above);
- the MAC is checked before `deserialize`; a file whose MAC does not match (swapped for another module's
  artifact, patched, truncated, written by another engine) is logged, compiled again and overwritten.
Artifacts are also named by sha256, kind and a digest of the fingerprint, so a changed module, a wasmtime
upgrade or a changed engine setting never even looks at a stale one.

Whoever can read the key can forge artifacts: it is as secret as the cache directory is private. A process
of the worker's own user can always do that; the check is against other users, a shared or mis-permissioned
volume, and files copied in from elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import wasmtime

from ..errors import ModuleRejected
from ..spec import ModuleSpec
from .engine import engine_fingerprint

T = TypeVar("T")
log = logging.getLogger("wasmq.precompiled")

MAGIC = b"wasmq-artifact-v1\n"  # then the 32-byte MAC, then the serialized artifact
MAC_BYTES = 32
KEY_FILE = ".key"
KEY_BYTES = 32


class PrecompiledCache:
    def __init__(self, cache_dir: Path | None) -> None:
        self.cache_dir = cache_dir
        self.fingerprint = engine_fingerprint()
        self._tag = hashlib.sha256(self.fingerprint.encode()).hexdigest()[:16]
        self._key: bytes | None = None
        self._refused: str | None = None  # why the directory is not used, once found out
        self._lock = threading.Lock()

    def path(self, spec: ModuleSpec) -> Path | None:
        """Where `spec`'s artifact is (or would be) kept; None without a cache directory."""
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{spec.sha256}-{self._tag}{_suffix(spec)}"

    def usable(self) -> bool:
        """Whether the directory can be trusted (made and keyed on first use); logs why not, once."""
        return self._ensure_key() is not None

    def has(self, spec: ModuleSpec) -> bool:
        """Whether an authentic artifact for `spec` is on disk (loading it then needs no compiling)."""
        artifact = self.path(spec)
        key = self._ensure_key() if artifact is not None else None
        if artifact is None or key is None or not artifact.exists():
            return False
        return self._read_authenticated(artifact, spec, key) is not None

    def load_or_compile(
        self, spec: ModuleSpec, *, compile: Callable[[], bytes], deserialize: Callable[[bytes], T]
    ) -> tuple[T, bool]:
        """The compiled artifact, and whether it came from the cache. `compile` returns serialized bytes (of the
        bounded compiler, worker/sandbox/compiler.py) and raises `ModuleRejected` for bad wasm."""
        artifact = self.path(spec)
        key = self._ensure_key() if artifact is not None else None
        if artifact is not None and key is not None:
            data = self._read_authenticated(artifact, spec, key)
            if data is not None:
                try:
                    return deserialize(data), True
                except wasmtime.WasmtimeError as exc:  # authentic but not loadable (another CPU's features)
                    log.warning("precompiled artifact %s cannot be loaded (%s): compiling again", artifact, exc)
        serialized = compile()
        try:
            compiled = deserialize(serialized)
        except wasmtime.WasmtimeError as exc:
            raise ModuleRejected(f"module {spec.ref}: its compiled artifact cannot be loaded: {exc}") from None
        if artifact is not None and key is not None:
            _write_atomically(artifact, MAGIC + _mac(key, spec, self.fingerprint, serialized) + serialized)
        return compiled, False

    # -- authentication -----------------------------------------------------------------------------------

    def _read_authenticated(self, artifact: Path, spec: ModuleSpec, key: bytes) -> bytes | None:
        try:
            raw = artifact.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("precompiled artifact %s cannot be read (%s): compiling again", artifact, exc.strerror)
            return None
        head = len(MAGIC) + MAC_BYTES
        if raw[: len(MAGIC)] != MAGIC or len(raw) <= head:
            log.warning("precompiled artifact %s is not one of ours: compiling again and overwriting it", artifact)
            return None
        data = raw[head:]
        if not hmac.compare_digest(raw[len(MAGIC) : head], _mac(key, spec, self.fingerprint, data)):
            log.warning(
                "precompiled artifact %s failed authentication (not written by this cache for module %s, %s): "
                "compiling again and overwriting it",
                artifact,
                spec.ref,
                spec.sha256,
            )
            return None
        return data

    def _ensure_key(self) -> bytes | None:
        if self._key is not None or self._refused is not None or self.cache_dir is None:
            return self._key
        with self._lock:
            if self._key is None and self._refused is None:
                try:
                    self._key = _load_key(self.cache_dir)
                except _Refused as exc:
                    self._refused = str(exc)
                    log.warning("not using the precompiled cache %s: %s; compiling in memory", self.cache_dir, exc)
        return self._key


class _Refused(Exception):
    """The cache directory or its key cannot be trusted."""


def _suffix(spec: ModuleSpec) -> str:
    return ".component.cwasm" if spec.is_component else ".cwasm"


def _mac(key: bytes, spec: ModuleSpec, fingerprint: str, data: bytes) -> bytes:
    kind = "component" if spec.is_component else "module"
    header = b"\0".join((MAGIC, spec.sha256.encode(), kind.encode(), fingerprint.encode())) + b"\0"
    return hmac.new(key, header + data, hashlib.sha256).digest()


def _check_private(path: Path, st: os.stat_result, *, what: str, mode_mask: int) -> None:
    uid = os.geteuid()
    if st.st_uid != uid:
        raise _Refused(f"{what} {path} belongs to uid {st.st_uid}, not to the worker's uid {uid}")
    if st.st_mode & mode_mask:
        raise _Refused(f"{what} {path} has mode {stat.filemode(st.st_mode)}: it must not be writable by others")


def _load_key(directory: Path) -> bytes:
    """The directory's MAC key, created on first use; `_Refused` when the directory or key is not private."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = directory.stat()
    except OSError as exc:
        raise _Refused(f"cannot create {directory} ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(st.st_mode):
        raise _Refused(f"{directory} is not a directory")
    _check_private(directory, st, what="the directory", mode_mask=stat.S_IWGRP | stat.S_IWOTH)
    path = directory / KEY_FILE
    for _ in range(3):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            _create_key(path)
            continue
        except OSError as exc:
            raise _Refused(f"cannot open the key {path} ({exc.strerror or exc})") from None
        with os.fdopen(fd, "rb") as fh:
            kst = os.fstat(fh.fileno())
            if not stat.S_ISREG(kst.st_mode):
                raise _Refused(f"the key {path} is not a regular file")
            _check_private(path, kst, what="the key", mode_mask=0o077)
            key = fh.read(KEY_BYTES + 1)
        if len(key) != KEY_BYTES:
            raise _Refused(f"the key {path} is {len(key)} bytes long, not {KEY_BYTES}")
        return key
    raise _Refused(f"the key {path} keeps disappearing")


def _create_key(path: Path) -> None:
    """Write a fresh random key under a temporary name and link it into place: a concurrent worker either wins
    (we then read its key) or loses; nobody ever reads a half-written key."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(KEY_BYTES))
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise _Refused(f"cannot create the key {path} ({exc.strerror or exc})") from None


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a temp file and rename, so a concurrent reader never sees half an artifact."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".cwasm")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # the cache is an optimisation: a read-only or full disk must not fail the job
