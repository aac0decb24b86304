"""What a task message must be before it reaches the pool: the intake bounds, checked in the worker's main
process for every message from any broker.

A message passes only as a Celery task protocol 2 message for `wasmq.call` or `wasmq.call_many`: headers
of plain JSON within `HEADERS` (the well-known ones of the right types, `argsrepr` and `kwargsrepr` cut to
`MAX_REPR_CHARS`), a JSON body of at most `WASMQ_MAX_MESSAGE_BYTES` that is `[args, kwargs, embed]` within
`BODY` (depth, values), callbacks, errbacks, chains and chords only to wasmq tasks (plain Celery canvas:
`group`, `chain`, `chord`), and arguments the task takes
(worker/queue/contract.py). Everything is looked at without recursion (worker/bounds.py): Celery hands the
message to billiard, which pickles it for the pool process, and a list nested 700 deep makes that raise
`RecursionError` in the main process, which Celery treats as the end of the worker.

`inspect` never raises: it returns the `Verdict`, whose error is `MalformedMessage` (the message itself is
wrong) or `InvalidInput` (the arguments are), for the consumer to dead-letter (worker/queue/consumer.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..bounds import Shape, ShapeError, check_shape, short_repr
from ..config import Settings
from ..errors import MalformedMessage, WasmqError
from .contract import MAX_CHUNK_ITEMS, PARAMETERS, Call, bind, items, parts

HEADERS = Shape(max_depth=8, max_nodes=512, max_string=4096)
# What a broker adds under `x-` names (RabbitMQ's x-death: tables with timestamps): not JSON, but bounded alike.
BROKER_HEADERS = Shape(max_depth=8, max_nodes=512, max_string=4096, other_scalars=(datetime, Decimal, bytes))
BODY = Shape(max_depth=8, max_nodes=2 * MAX_CHUNK_ITEMS + 256)
MAX_ID_CHARS = 255
MAX_REPR_CHARS = 1024  # of `argsrepr` / `kwargsrepr`: what the worker logs and sends in task events
CONTENT_TYPE = "application/json"
ENCODINGS = (None, "", "utf-8", "utf8")
CANVAS = ("callbacks", "errbacks", "chain", "chord")
OPTIONAL_TEXT = ("eta", "expires", "parent_id", "root_id", "group", "shadow", "origin", "lang")
TASKS = ", ".join(PARAMETERS)


@dataclass(frozen=True)
class Verdict:
    """What the intake found: the checked call, or the error; and what is known of the message either way."""

    call: Call | None = None
    error: WasmqError | None = None
    task: str | None = None  # the task name, if it is one of ours
    task_id: str | None = None  # the message's id, if it is a usable one
    module: Any = None
    function: Any = None
    items: int = 1


def message_id(headers: Any) -> str | None:
    """The message's `id` header if it is one a result can be stored under, else None."""
    value = headers.get("id") if isinstance(headers, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS and value.isprintable() else None


def _malformed(why: str) -> MalformedMessage:
    return MalformedMessage(why[:1000])


def _check_headers(headers: dict[str, Any]) -> None:
    for key in ("argsrepr", "kwargsrepr"):
        text = headers.get(key)
        if text is not None and not isinstance(text, str):
            raise _malformed(f"header {key!r} must be a string, not {type(text).__name__}")
        if text is not None and len(text) > MAX_REPR_CHARS:
            headers[key] = text[:MAX_REPR_CHARS] + "..."  # display only: kept short, not refused
    ours = {k: v for k, v in headers.items() if not (isinstance(k, str) and k.startswith("x-"))}
    check_shape(ours, HEADERS, "headers")
    if len(ours) < len(headers):
        check_shape({k: v for k, v in headers.items() if k not in ours}, BROKER_HEADERS, "headers")
    retries = headers.get("retries")
    if retries is not None and (type(retries) is not int or not 0 <= retries <= 1_000_000):
        raise _malformed(f"header 'retries' must be a whole number from 0, not {short_repr(retries, 40)}")
    limits = headers.get("timelimit")
    if limits is not None:
        if not isinstance(limits, list | tuple) or len(limits) != 2 or not all(map(_seconds, limits)):
            raise _malformed(f"header 'timelimit' must be [hard, soft] seconds or nulls, not {short_repr(limits, 60)}")
    for key in OPTIONAL_TEXT:
        value = headers.get(key)
        if value is not None and not isinstance(value, str):
            raise _malformed(f"header {key!r} must be a string or null, not {type(value).__name__}")
    for key, kind in (("group_index", int), ("ignore_result", bool), ("stamps", dict), ("stamped_headers", list)):
        value = headers.get(key)
        if value is not None and (not isinstance(value, kind) or (kind is int and type(value) is bool)):
            raise _malformed(f"header {key!r} must be a {kind.__name__} or null, not {type(value).__name__}")


def _seconds(value: Any) -> bool:
    return value is None or (type(value) in (int, float) and math.isfinite(value) and 0 <= value <= 10**7)


def _body_size(body: Any) -> int:
    return len(body) if isinstance(body, bytes | bytearray | str) else 0


def _fill_display(headers: dict[str, Any], args: Any, kwargs: Any) -> None:
    """A foreign producer's message often has no `argsrepr`: Celery then logs and sends `repr(args)` whole,
    and that is recursive; a short one is put in its place."""
    if not headers.get("argsrepr"):
        headers["argsrepr"] = short_repr(args, MAX_REPR_CHARS)
    if not headers.get("kwargsrepr"):
        headers["kwargsrepr"] = short_repr(kwargs, MAX_REPR_CHARS)


def _check_body(payload: Any) -> tuple[Any, Any]:
    if not isinstance(payload, list | tuple) or len(payload) != 3:
        shown = f"a list of {len(payload)}" if isinstance(payload, list | tuple) else type(payload).__name__
        raise _malformed(f"body must be [args, kwargs, embed] (Celery task protocol 2), not {shown}")
    check_shape(payload, BODY, "body")
    args, kwargs, embed = payload
    if embed is not None and not isinstance(embed, dict):
        raise _malformed(f"body's embed must be an object or null, not {type(embed).__name__}")
    for key in CANVAS:
        if embed and embed.get(key):
            _check_canvas(key, embed[key])
    return args, kwargs


def _check_canvas(key: str, value: Any) -> None:
    """Callbacks, errbacks, a chain's next steps or a chord's body: signatures of wasmq tasks only (Celery
    sends them as new messages, which the intake checks again when they arrive)."""
    signatures = [value] if key == "chord" else value
    if not isinstance(signatures, list) or not all(isinstance(sig, dict) for sig in signatures):
        raise _malformed(f"embed {key!r} must hold task signatures (objects), not {short_repr(value, 80)}")
    for sig in signatures:
        task = sig.get("task")
        if task not in PARAMETERS:
            raise _malformed(
                f"embed {key!r}: callbacks, errbacks, chains and chords may name only wasmq tasks ({TASKS}), "
                f"not {short_repr(task, 80)}"
            )


def inspect(message: Any, settings: Settings) -> Verdict:
    """Check one delivered message (a kombu `Message` of any transport) against the intake bounds."""
    headers = getattr(message, "headers", None)
    known: dict[str, Any] = {"task_id": message_id(headers)}  # what the verdict says of the message either way
    try:
        if not isinstance(headers, dict):
            raise _malformed(f"message headers must be an object, not {type(headers).__name__}")
        task = headers.get("task")
        if task is None:
            raise _malformed("message has no 'task' header: only Celery task protocol 2 messages are accepted")
        if not isinstance(task, str) or task not in PARAMETERS:
            raise _malformed(f"task {short_repr(task, 80)} is not a wasmq task (this queue takes {TASKS})")
        known["task"] = task
        if known["task_id"] is None:
            raise _malformed(f"header 'id' must be a printable string of 1 to {MAX_ID_CHARS} characters")
        _check_headers(headers)
        _check_content(message, settings)
        try:
            payload = message.decode()  # memoized: Celery reads this same decoded body afterwards
        except Exception as exc:  # DecodeError, RecursionError (JSON nested past the decoder's limit), ...
            why = f"body is not JSON that can be read: {type(exc).__name__}: {short_repr(str(exc), 200)}"
            raise _malformed(why) from None
        args, kwargs = _check_body(payload)
        _fill_display(headers, args, kwargs)
        module, function, inputs, _ = parts(task, args, kwargs)
        known.update(module=module, function=function, items=items(task, inputs))
        return Verdict(call=bind(task, args, kwargs), **known)
    except ShapeError as exc:
        return Verdict(error=_malformed(str(exc)), **known)
    except WasmqError as exc:
        return Verdict(error=exc, **known)
    except Exception as exc:  # a check that met something unforeseen: the message is refused, not the worker
        return Verdict(error=_malformed(f"message could not be checked ({type(exc).__name__})"), **known)


def _check_content(message: Any, settings: Settings) -> None:
    content_type = getattr(message, "content_type", None)
    if content_type != CONTENT_TYPE:
        raise _malformed(f"content type {short_repr(content_type, 60)} is not accepted (only {CONTENT_TYPE})")
    if getattr(message, "content_encoding", None) not in ENCODINGS:
        raise _malformed(f"content encoding {short_repr(message.content_encoding, 40)} is not accepted (utf-8)")
    size = _body_size(getattr(message, "body", None))
    if size > settings.max_message_bytes:
        raise _malformed(
            f"body of {size} bytes is above the message limit of {settings.max_message_bytes} bytes "
            "(WASMQ_MAX_MESSAGE_BYTES)"
        )
