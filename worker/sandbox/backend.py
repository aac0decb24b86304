"""The one interface every kind of module is run through (core modules, components), so the sandbox
dispatches once on `spec.is_component` instead of branching on the ABI in every method."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..errors import WasmqError
from ..spec import ModuleSpec
from .result import CallResult

Requested = dict[str, Any] | None  # the limits a job asked for (each at most the module's)


class Backend(Protocol):
    def ready(self, spec: ModuleSpec) -> bool:
        """Whether `load(spec)` needs no compiling (loaded or rejected already, or authentic on disk)."""

    def load(self, spec: ModuleSpec) -> None:
        """Compile (or load from the cache) and check `spec`; `ModuleRejected` if it is unacceptable."""

    def call(self, spec: ModuleSpec, function: str, input: object, limits: Requested) -> CallResult:
        """One call in a fresh instance: the checked answer, or the typed error raised."""

    def call_many(
        self, spec: ModuleSpec, function: str, inputs: Sequence[object], limits: Requested
    ) -> list[CallResult | WasmqError]:
        """One result or typed error per input, in order."""
