"""What a call gives back, the same for every backend: the checked answer and what it cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

E = TypeVar("E", bound=Exception)


@dataclass(frozen=True)
class Usage:
    """What one call consumed.

    After an epoch interrupt `fuel` undercounts: wasmtime does not write the fuel counter back to the store
    when the deadline stops the guest. `memory_bytes` is the size of the linear memory after the call (for a
    component, read through the host's memory meter, worker/sandbox/component/meter.py; 0 after a failed
    component call or for a component the meter could not be added to).
    """

    fuel: int
    wall_ms: float
    memory_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"fuel": self.fuel, "wall_ms": round(self.wall_ms, 3), "memory_bytes": self.memory_bytes}


@dataclass(frozen=True)
class CallResult:
    """A validated answer, what it cost, and what the module printed (WASI modules only)."""

    output: str
    usage: Usage
    stdout: str = ""
    stderr: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "usage": self.usage.to_dict()}


def sharing(outputs: Sequence[str | E], usage: Usage) -> list[CallResult | E]:
    """A `CallResult` for each output of one batch call, all with the same `usage` (an error stays in place).

    Made by filling a new instance's `__dict__` from one built the normal way: the frozen dataclass's
    `__init__` (an `object.__setattr__` per field) costs more per item than the batch's wasm call itself.
    """
    fields = vars(CallResult(output="", usage=usage))
    new = object.__new__
    results: list[CallResult | E] = []
    append = results.append
    for output in outputs:
        if isinstance(output, str):
            result = new(CallResult)
            state = result.__dict__
            state.update(fields)
            state["output"] = output
            append(result)
        else:
            append(output)
    return results
