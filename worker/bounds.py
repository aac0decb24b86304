"""Untrusted data, looked at without recursion: shape checks, bounded copies, bounded reprs, no server paths.

A foreign producer can send JSON of any shape. Anything recursive on it (`repr`, `json.dumps`, `pickle`,
`copy.deepcopy`, `dataclasses.asdict`) raises `RecursionError` past a thousand levels, and anything that copies
it whole costs as much memory as it is large. These functions walk a value with an explicit stack and stop at
their limits, so their cost is bounded by the limits, not by the value.
"""

from __future__ import annotations

import json
import re
import reprlib
from dataclasses import dataclass
from typing import Any

SCALARS = (str, int, float, bool, type(None))


class ShapeError(ValueError):
    """A value is not JSON of the allowed shape; the message names where and why."""


@dataclass(frozen=True)
class Shape:
    """How deep, how many values and how long a string a JSON value may have."""

    max_depth: int
    max_nodes: int
    max_string: int | None = None  # characters per string (keys included); None: no limit of its own
    other_scalars: tuple[type, ...] = ()  # besides JSON's: e.g. the timestamps a broker puts in its own headers


def _where(entry: tuple[Any, ...] | None) -> str:
    path: list[Any] = []
    while entry is not None:
        path.append(entry[0])
        entry = entry[1]
    path.reverse()
    shown = "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in path[:6])
    return shown + ("..." if len(path) > 6 else "")


_TEXT_ONLY = {str}
_PLAIN = {str, int, float, bool, type(None)}


def check_shape(value: Any, shape: Shape, name: str) -> int:
    """Raise `ShapeError` unless `value` is plain JSON within `shape`; returns the number of values in it.

    Cost: a few hundred nanoseconds per container, a few per string in a list of strings (a chunk's inputs)."""
    nodes = 0
    # (value, depth, path entry); a path entry is (key, parent entry), built only for what is pushed
    stack: list[tuple[Any, int, tuple[Any, ...] | None]] = [(value, 0, None)]
    while stack:
        item, depth, at = stack.pop()
        nodes += 1
        kind = type(item)
        if kind is str:
            _check_string(item, shape, name, at)
        elif kind not in _PLAIN:
            if kind is not list and kind is not tuple and kind is not dict:
                if isinstance(item, shape.other_scalars):
                    continue
                raise ShapeError(f"{name}{_where(at)} is a {kind.__name__}, not a JSON value")
            if depth >= shape.max_depth:
                raise ShapeError(f"{name}{_where(at)} is nested deeper than {shape.max_depth} levels")
            if nodes + len(item) > shape.max_nodes:
                raise ShapeError(f"{name} holds more than {shape.max_nodes} values")
            if kind is dict:
                inner = _containers(item, shape, name, at)
                nodes += len(item) - len(inner)
                stack.extend((child, depth + 1, (key, at)) for key, child in inner)
            elif _flat(item, shape, name, at):
                nodes += len(item)
            else:
                stack.extend((child, depth + 1, (index, at)) for index, child in enumerate(item))
    return nodes


def _check_string(text: str, shape: Shape, name: str, at: tuple[Any, ...] | None) -> None:
    if shape.max_string is not None and len(text) > shape.max_string:
        raise ShapeError(f"{name}{_where(at)} is a string of {len(text)} characters (at most {shape.max_string})")


def _flat(item: list[Any] | tuple[Any, ...], shape: Shape, name: str, at: tuple[Any, ...] | None) -> bool:
    """Whether a list holds only strings (checked here, at C speed: a chunk's inputs) or, without a string
    limit, only scalars."""
    kinds = set(map(type, item))
    if kinds <= _TEXT_ONLY:
        limit = shape.max_string
        if limit is not None and item and max(map(len, item)) > limit:
            index = next(i for i, text in enumerate(item) if len(text) > limit)
            _check_string(item[index], shape, name, (index, at))
        return True
    return kinds <= _PLAIN and shape.max_string is None


def _containers(item: dict[Any, Any], shape: Shape, name: str, at: tuple[Any, ...] | None) -> list[tuple[str, Any]]:
    """The (key, value) pairs of an object whose value is a container, its keys and other values checked."""
    limit = shape.max_string
    inner = []
    for key, child in item.items():
        if type(key) is not str:
            raise ShapeError(f"{name}{_where(at)} has a key of type {type(key).__name__}")
        kind = type(child)
        if limit is not None and (len(key) > limit or (kind is str and len(child) > limit)):
            where = f"{name}{_where(at)}"
            raise ShapeError(f"{where} has a key or a string of more than {limit} characters at {key[:40]!r}")
        if kind not in _PLAIN:
            inner.append((key, child))
    return inner


@dataclass(frozen=True)
class Cut:
    """How much of a value a bounded copy keeps."""

    max_string: int = 256
    max_items: int = 20
    max_depth: int = 4


def bounded_copy(value: Any, cut: Cut = Cut()) -> tuple[Any, bool]:
    """A JSON-compatible copy of `value` cut to `cut` (strings shortened, long lists and objects and deep
    nesting replaced by a marker), and whether anything was cut. Never recursive, never larger than the cut."""
    cut_anything = False

    def leaf(item: Any) -> Any:
        nonlocal cut_anything
        if isinstance(item, str):
            if len(item) <= cut.max_string:
                return item
            cut_anything = True
            return item[: cut.max_string] + f"...[{len(item) - cut.max_string} more characters]"
        if isinstance(item, SCALARS):
            return item
        cut_anything = True
        return short_repr(item, cut.max_string)

    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    while stack:
        item, parent, slot, depth = stack.pop()
        if isinstance(item, list | tuple | dict):
            if depth >= cut.max_depth:
                cut_anything = True
                parent[slot] = f"[{type(item).__name__} of {len(item)} nested too deep, not kept]"
                continue
            pairs = list(item.items())[: cut.max_items + 1] if isinstance(item, dict) else None
            if pairs is not None:
                copy: Any = {}
                for key, child in pairs[: cut.max_items]:
                    name = leaf(key if isinstance(key, str) else str(key))
                    copy[name] = None
                    stack.append((child, copy, name, depth + 1))
                if len(item) > cut.max_items:
                    cut_anything = True
                    copy["..."] = f"{len(item) - cut.max_items} more keys not kept"
            else:
                kept = item[: cut.max_items]
                copy = [None] * len(kept)
                for index, child in enumerate(kept):
                    stack.append((child, copy, index, depth + 1))
                if len(item) > cut.max_items:
                    cut_anything = True
                    copy.append(f"... {len(item) - cut.max_items} more items not kept")
            parent[slot] = copy
        else:
            parent[slot] = leaf(item)
    return root[0], cut_anything


class _Repr(reprlib.Repr):
    def repr_bytes(self, x: bytes, level: int) -> str:
        return repr(x[: self.maxstring]) + ("..." if len(x) > self.maxstring else "")

    repr_bytearray = repr_bytes  # type: ignore[assignment]


def short_repr(value: Any, limit: int = 200) -> str:
    """`repr(value)` for a log line or a message: at most `limit` characters, a few levels deep, whatever
    `value` is (reprlib stops at its depth limit; strings and bytes are cut before they are copied)."""
    printer = _Repr()
    printer.maxlevel, printer.maxstring, printer.maxother = 3, limit, limit
    printer.maxlist = printer.maxtuple = printer.maxdict = printer.maxset = 10
    try:
        text = printer.repr(value)
    except Exception as exc:  # a hostile __repr__
        text = f"<{type(value).__name__}: repr failed with {type(exc).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def encoded_size(value: Any) -> int:
    """Bytes of `value` in the JSON that Celery and kombu store and send (ASCII-escaped, default separators)."""
    return len(json.dumps(value))


def escaped_bound(text: str) -> int:
    """At most how many bytes `text` takes as an ASCII-escaped JSON string (12 per character: an astral
    character becomes a surrogate pair of `\\uXXXX` escapes), quotes included."""
    return 12 * len(text) + 2


# An absolute path of two or more parts, not part of a URL (`redis://host/0` is preceded by a slash).
_PATH = re.compile(r"(?<![\w:/.~-])/(?:[\w.@+~-]+/)+([\w.@+~-]*)")


def without_paths(text: str) -> str:
    """`text` with every absolute file path replaced by its last part: what a server's layout is stays on
    the server (error messages and results go to every producer)."""
    return _PATH.sub(lambda m: m.group(1) or "<dir>", text)
