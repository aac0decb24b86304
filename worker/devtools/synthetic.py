"""Synthetic modules for tests and benchmarks: a correct packed-ABI greeter made as large, or as costly to
compile, as asked, so that size limits, chunked storage and compile limits can be exercised with real bytes.

`padded_greeter(n)` carries an n-byte custom section (bytes that cost nothing to compile: a big download);
`costly_greeter(functions, ops)` carries `functions` extra functions of `ops` instructions each (a big compile:
roughly linear in functions x ops). Both greet as `greet(name) -> "Hello World, NAME!"`.
"""

from __future__ import annotations

import wasmtime

from ..config import REPO_ROOT
from ..sandbox.wasm_bytes import CUSTOM_SECTION, name, section

GREETER_WAT = REPO_ROOT / "tests" / "corpora" / "hostile" / "good_wat.wat"


def greeter() -> bytes:
    return bytes(wasmtime.wat2wasm(GREETER_WAT.read_text(encoding="utf-8")))


def labelled(wasm: bytes, label: str) -> bytes:
    """`wasm` with a small custom section naming `label`: the same code under another sha256."""
    return wasm + section(CUSTOM_SECTION, name(b"wasmq-label") + label.encode())


def padded_greeter(pad_bytes: int, *, label: str = "padding") -> bytes:
    """The greeter with a custom section of `pad_bytes` bytes appended (its content varies with `label`)."""
    text = label.encode()
    pattern = (text + b"\x00") * (pad_bytes // (len(text) + 1) + 1)
    return greeter() + section(CUSTOM_SECTION, name(text) + pattern[:pad_bytes])


def costly_greeter(functions: int, ops: int) -> bytes:
    """The greeter with `functions` more functions of about `ops` instructions each, all exported (so none
    is dead code a compiler could skip)."""
    text = GREETER_WAT.read_text(encoding="utf-8").rstrip()
    assert text.endswith(")")
    body = " ".join(["(local.set 0 (i32.add (local.get 0) (i32.mul (local.get 0) (i32.const 7))))"] * ops)
    extra = "\n".join(
        f'  (func (export "extra_{i}") (param i32) (result i32) {body} (local.get 0))' for i in range(functions)
    )
    return bytes(wasmtime.wat2wasm(text[:-1] + "\n" + extra + "\n)"))


def slow_greeter(spins: int) -> bytes:
    """The greeter spinning `spins` loop iterations (about 5 fuel each) before it answers: a job that is
    surely still running a moment after it started."""
    text = GREETER_WAT.read_text(encoding="utf-8")
    head = "(local $out i32) (local $n i32)"
    assert head in text
    spin = (
        f"{head} (local $spin i32)\n    (loop $again (local.set $spin (i32.add (local.get $spin) (i32.const 1)))"
        f" (br_if $again (i32.lt_u (local.get $spin) (i32.const {spins}))))"
    )
    return bytes(wasmtime.wat2wasm(text.replace(head, spin, 1)))
