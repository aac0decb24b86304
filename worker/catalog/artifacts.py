"""Precompiled artifacts shared through the registry, per engine fingerprint: what the publisher's bounded
compile produced, so that a new node deserializes (milliseconds) instead of compiling (up to seconds).

A separate, bounded piece (worker/sandbox/shared.py is its other half): an artifact is native code, so it is
only ever written by a registry publisher (`wasmq modules add`, under the publisher's ACL user: workers and
producers can only read registry keys), stored with its own sha256 and bound to the module's sha256 and the
engine fingerprint in its key, and checked against that sha256 before it is handed to the sandbox. Workers
use shared artifacts only with WASMQ_SHARED_ARTIFACTS=1, since loading them extends the trust in whoever holds
the publisher credential from wasm (sandboxed) to native code. A local artifact cache keeps working as before:
a shared artifact, once loaded, is written to it like a compiled one.
"""

from __future__ import annotations

import hashlib
import logging

from ..errors import WasmqError
from ..keys import registry_artifact_key
from ..spec import ModuleSpec
from .blobs import get_blob
from .registry import Registry

log = logging.getLogger("wasmq.catalog")
MAX_ARTIFACT_FACTOR = 64  # an artifact larger than this many times its module (or 64 MiB) is not fetched


def fingerprint_tag(fingerprint: str) -> str:
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:16]


class SharedArtifacts:
    """The `ArtifactSource` of worker/sandbox/shared.py, over one registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def artifact(self, spec: ModuleSpec, kind: str, fingerprint: str) -> bytes | None:
        """The artifact of `spec` for this engine, if the publisher stored one and it is whole; else None."""
        key = registry_artifact_key(fingerprint_tag(fingerprint), kind, spec.sha256)
        limit = max(64 * 1024 * 1024, self.registry.max_module_bytes * MAX_ARTIFACT_FACTOR)
        try:
            found = self.registry.read(
                lambda r: get_blob(r, key, max_bytes=limit, what=f"artifact of {spec.ref}", fields=("sha256",))
            )
        except WasmqError as exc:  # unreachable or damaged: compile instead, as without sharing
            log.warning("shared artifact of %s not used: %s", spec.ref, exc.message)
            return None
        if found is None:
            return None
        data, fields = found
        if hashlib.sha256(data).hexdigest() != fields.get("sha256"):
            log.warning("shared artifact of %s does not match its recorded sha256: not used", spec.ref)
            return None
        return data

    def store(self, spec: ModuleSpec, kind: str, fingerprint: str, data: bytes) -> bool:
        """Store an artifact (publisher's credentials); False when one is there already."""
        key = registry_artifact_key(fingerprint_tag(fingerprint), kind, spec.sha256)
        return self.registry.put_blob(key, data, sha256=hashlib.sha256(data).hexdigest())
