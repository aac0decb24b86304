"""A reader for the small part of WIT that wasmq needs: the worlds of a package and the functions they import
and export, with parameter and result types as normalised WIT text (`string`, `list<u8>`, `result<_, u32>`).

Supported inside a world: `import NAME: func(...) [-> T];` and `export NAME: func(...) [-> T];`. Anything
else in a world (interfaces, `use`, `include`, type definitions) is refused with a `ConfigError`, so a world
never silently means something other than what the host checks. Blocks outside the worlds (interfaces) are
skipped. The manifest's `wit` + `world` name one world; `worker.sandbox.component` checks a component's
exports against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ConfigError

_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_TOKENS = re.compile(r"\s*(->|[{}()<>,:;=@/.*]|%?[A-Za-z_][A-Za-z0-9_-]*|[0-9][0-9A-Za-z.+-]*)")


@dataclass(frozen=True)
class WitFunc:
    """One function of a world: `name: func(p: T, ...) -> R`."""

    name: str
    params: tuple[tuple[str, str], ...]
    result: str | None

    @property
    def types(self) -> tuple[tuple[str, ...], str | None]:
        """The signature without parameter names (names do not change how a call is made)."""
        return tuple(t for _, t in self.params), self.result

    def __str__(self) -> str:
        params = ", ".join(f"{n}: {t}" for n, t in self.params)
        return f"{self.name}: func({params})" + (f" -> {self.result}" if self.result is not None else "")


@dataclass(frozen=True)
class WitWorld:
    """A world: what a component of it exports, and what it would need the host to give it."""

    package: str
    name: str
    imports: dict[str, WitFunc] = field(default_factory=dict)
    exports: dict[str, WitFunc] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        base, _, version = self.package.partition("@")
        return f"{base}/{self.name}" + (f"@{version}" if version else "")


class _Reader:
    def __init__(self, text: str, where: str) -> None:
        self.where = where
        self.tokens: list[str] = []
        body = _COMMENTS.sub(" ", text)
        pos = 0
        while pos < len(body):
            if body[pos:].strip() == "":
                break
            m = _TOKENS.match(body, pos)
            if m is None:
                raise ConfigError(f"{where}: unexpected character {body[pos:].lstrip()[:1]!r} in WIT")
            self.tokens.append(m.group(1))
            pos = m.end()
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            got = "end of file" if tok is None else repr(tok)
            raise ConfigError(f"{self.where}: expected {expected or 'more WIT'!r}, found {got}")
        self.i += 1
        return tok

    def name(self) -> str:
        tok = self.take()
        if not re.fullmatch(r"%?[A-Za-z_][A-Za-z0-9_-]*", tok):
            raise ConfigError(f"{self.where}: expected a name, found {tok!r}")
        return tok.lstrip("%")

    def until(self, stop: str) -> str:
        parts = []
        while self.peek() != stop:
            parts.append(self.take())
        self.take(stop)
        return "".join(parts)

    def skip_block(self) -> None:
        depth = 0
        while True:
            tok = self.take()
            depth += tok == "{"
            depth -= tok == "}"
            if depth == 0 and tok == "}":
                return

    def type(self) -> str:
        head = self.take()
        if head == "_":
            return "_"
        if not re.fullmatch(r"%?[A-Za-z_][A-Za-z0-9_-]*", head):
            raise ConfigError(f"{self.where}: expected a type, found {head!r}")
        if self.peek() != "<":
            return head.lstrip("%")
        self.take("<")
        args = [self.type()]
        while self.peek() == ",":
            self.take(",")
            args.append(self.type())
        self.take(">")
        return f"{head}<{', '.join(args)}>"

    def func(self, name: str) -> WitFunc:
        self.take("func")
        self.take("(")
        params: list[tuple[str, str]] = []
        while self.peek() != ")":
            pname = self.name()
            self.take(":")
            params.append((pname, self.type()))
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        result = None
        if self.peek() == "->":
            self.take("->")
            result = self.type()
        self.take(";")
        return WitFunc(name=name, params=tuple(params), result=result)


def parse_wit(text: str, *, where: str = "WIT") -> dict[str, WitWorld]:
    """The worlds of one WIT file, by name."""
    r = _Reader(text, where)
    package = ""
    worlds: dict[str, WitWorld] = {}
    while r.peek() is not None:
        tok = r.take()
        if tok == "package":
            package = r.until(";")
        elif tok == "world":
            world = _world(r, package)
            worlds[world.name] = world
        elif tok == "interface":
            r.name()
            r.skip_block()
        elif tok == "use":
            r.until(";")
        else:
            raise ConfigError(f"{where}: unexpected {tok!r} at the top level of the WIT file")
    return worlds


def _world(r: _Reader, package: str) -> WitWorld:
    name = r.name()
    r.take("{")
    imports: dict[str, WitFunc] = {}
    exports: dict[str, WitFunc] = {}
    while r.peek() != "}":
        kind = r.take()
        if kind not in ("import", "export"):
            raise ConfigError(f"{r.where}: world {name}: {kind!r} items are not supported (only functions)")
        item = r.name()
        if r.peek() != ":" or r.tokens[r.i + 1 : r.i + 2] != ["func"]:
            raise ConfigError(
                f"{r.where}: world {name}: {kind} {item!r} is not a function; "
                "wasmq supports only function imports and exports in a world"
            )
        r.take(":")
        target = imports if kind == "import" else exports
        if item in target:
            raise ConfigError(f"{r.where}: world {name}: {kind} {item!r} is declared twice")
        target[item] = r.func(item)
    r.take("}")
    return WitWorld(package=package, name=name, imports=imports, exports=exports)


def load_world(path: Path, world: str) -> WitWorld:
    """World `world` (a plain name, or `ns:pkg/name[@version]`) of the WIT file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"WIT file {path} is not readable: {exc}") from None
    return find_world(text, world, where=f"WIT file {path}")


def find_world(text: str, world: str, *, where: str = "WIT") -> WitWorld:
    """World `world` of the WIT text `text` (as published: a manifest's file or a registry entry's text)."""
    worlds = parse_wit(text, where=where)
    found = worlds.get(world.rsplit("/", maxsplit=1)[-1].split("@", maxsplit=1)[0])
    if found is None or ("/" in world and world not in (found.ref, found.ref.split("@", maxsplit=1)[0])):
        raise ConfigError(f"{where} has no world {world!r}; it defines {sorted(w.ref for w in worlds.values())}")
    return found
