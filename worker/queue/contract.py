"""The arguments of the two wasmq tasks, as any producer may send them: in order, by name, or both.

`wasmq.call(module, function, input, limits=None)` and
`wasmq.call_many(module, function, inputs, limits=None, usage="chunk", budget_s=None)` (`usage="items"`:
per-item usage in the result; `budget_s`: seconds after which the worker starts no more of the inputs and
answers how many it did not reach, worker/chunk_result.py).
`bind` turns a message's (args, kwargs) into a `Call` or raises `InvalidInput` naming what is wrong (arity,
unknown or repeated names, types), the same in the worker's main process (before a message reaches the pool,
worker/queue/intake.py) and in the task itself. `parts` reads module, function and input(s) from arguments of
any shape without raising, for labels and log lines. docs/contract/ has the whole message contract as JSON
Schema; tests/queue/test_contract.py keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..chunk_result import LEAN, MAX_BUDGET_S, USAGE_SHAPES
from ..errors import InvalidInput
from ..keys import CALL_MANY_TASK, CALL_TASK

PARAMETERS = {
    CALL_TASK: ("module", "function", "input", "limits"),
    CALL_MANY_TASK: ("module", "function", "inputs", "limits", "usage", "budget_s"),
}
REQUIRED = 3  # module, function, input(s); limits may be left out
MAX_NAME_CHARS = 256  # a module or function name
MAX_CHUNK_ITEMS = 10_000  # inputs of one wasmq.call_many message


@dataclass(frozen=True, slots=True)
class Call:
    """A task's arguments, checked: `payload` is the input (wasmq.call) or the list of inputs (call_many)."""

    task: str
    module: str
    function: str
    payload: Any
    limits: dict[str, Any] | None
    usage: str = LEAN  # call_many's result shape
    budget_s: float | None = None  # call_many's time budget (None: run every input)


def _name(what: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        shown = type(value).__name__ if not isinstance(value, str) else "an empty one"
        raise InvalidInput(f"'{what}' must be a non-empty string, not {shown}")
    if len(value) > MAX_NAME_CHARS:
        raise InvalidInput(f"'{what}' is {len(value)} characters long (at most {MAX_NAME_CHARS})")
    return value


def bind(task: str, args: Any, kwargs: Any) -> Call:
    """The checked arguments of one `task` message, or `InvalidInput` naming what is wrong."""
    params = PARAMETERS[task]
    if not isinstance(args, list | tuple):
        raise InvalidInput(f"{task}: positional arguments must be a list, not {type(args).__name__}")
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise InvalidInput(f"{task}: keyword arguments must be an object, not {type(kwargs).__name__}")
    if len(args) > len(params):
        raise InvalidInput(f"{task} takes at most {len(params)} arguments ({', '.join(params)}), not {len(args)}")
    values: dict[str, Any] = dict(zip(params, args, strict=False))
    unknown = [str(k)[:40] for k in kwargs if k not in params]
    if unknown:
        raise InvalidInput(f"{task} has no argument {', '.join(map(repr, unknown[:5]))}; it takes {', '.join(params)}")
    twice = [k for k in kwargs if k in values]
    if twice:
        raise InvalidInput(f"{task}: argument {twice[0]!r} given both in order and by name")
    values.update(kwargs)
    missing = [p for p in params[:REQUIRED] if p not in values]
    if missing:
        raise InvalidInput(f"{task} is missing argument {', '.join(map(repr, missing))}; it takes {', '.join(params)}")
    module = _name("module", values["module"])
    function = _name("function", values["function"])
    payload = values[params[2]]
    if task == CALL_TASK:
        if not isinstance(payload, str):
            raise InvalidInput(f"'input' must be a string, not {type(payload).__name__}")
    elif not isinstance(payload, list):
        raise InvalidInput(f"'inputs' must be a list, not {type(payload).__name__}")
    elif len(payload) > MAX_CHUNK_ITEMS:
        raise InvalidInput(f"a chunk holds at most {MAX_CHUNK_ITEMS} inputs, not {len(payload)}")
    limits = values.get("limits")
    if limits is not None and not isinstance(limits, dict):
        raise InvalidInput(f"'limits' must be an object or null, not {type(limits).__name__}")
    return Call(task, module, function, payload, limits, _usage(values.get("usage")), _budget(values.get("budget_s")))


def _usage(usage: Any) -> str:
    """call_many's result shape: `chunk` (null too) or `items`."""
    if usage is None:
        return LEAN
    if usage not in USAGE_SHAPES:
        shown = repr(usage[:40]) if isinstance(usage, str) else type(usage).__name__
        raise InvalidInput(f"'usage' must be one of {', '.join(map(repr, USAGE_SHAPES))} or null, not {shown}")
    return str(usage)


def _budget(budget: Any) -> float | None:
    """call_many's time budget: null, or a number of seconds above 0 and at most MAX_BUDGET_S."""
    if budget is None:
        return None
    if type(budget) not in (int, float) or not 0 < budget <= MAX_BUDGET_S:
        shown = repr(budget) if type(budget) in (int, float) else type(budget).__name__
        raise InvalidInput(f"'budget_s' must be a number of seconds above 0 and at most {MAX_BUDGET_S}, or null, "
                           f"not {shown}")  # fmt: skip
    return float(budget)


def parts(task: Any, args: Any, kwargs: Any) -> tuple[Any, Any, Any, Any]:
    """(module, function, input or inputs, limits) as sent, whatever the arguments' shape (None where absent)."""
    params = PARAMETERS.get(task, PARAMETERS[CALL_TASK])
    values: dict[str, Any] = dict(zip(params, args, strict=False)) if isinstance(args, list | tuple) else {}
    if isinstance(kwargs, dict):
        for key in params:
            if key in kwargs and key not in values:
                values[key] = kwargs[key]
    return values.get("module"), values.get("function"), values.get(params[2]), values.get("limits")


def items(task: Any, payload: Any) -> int:
    """How many calls a message stands for: its inputs for a chunk, else one."""
    return len(payload) if task == CALL_MANY_TASK and isinstance(payload, list) else 1
