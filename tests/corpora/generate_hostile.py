"""The hostile corpus for compilation, wasm features and WASI host calls, made deterministically.

    python tests/corpora/generate_hostile.py            writes the small cases (WAT + wasm) into
                                                         tests/corpora/hostile_compile/ and hostile_wasi/
    python tests/corpora/generate_hostile.py --big DIR   also writes the big pathological modules into DIR

The big modules (80,000 nested loops, 100,000 data segments, a huge function body, many functions) are
encoded straight to binary by the functions below and made at test time (`BIG`), so that the repository
carries a few hundred bytes of generator instead of megabytes of wasm; the small cases are committed as WAT
(the source) and wasm (what the tests load). Running the script again must give byte-identical files.

Every WASI case is a packed-ABI module (`alloc`, `dealloc`, `greet(ptr, len) -> i64`) whose `greet` does its
hostile host call and then answers the greeting, so a host that returns from the call in time (with an
error code or a result) yields "Hello World, NAME!" and one that does not is stopped by a limit.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMPILE_DIR = HERE / "hostile_compile"
WASI_DIR = HERE / "hostile_wasi"

# -- binary encoding (just what the big modules need) --------------------------------------------------


def uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def vec(items: Iterable[bytes]) -> bytes:
    parts = list(items)
    return uleb(len(parts)) + b"".join(parts)


def name(text: str) -> bytes:
    return uleb(len(text)) + text.encode()


def section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + uleb(len(payload)) + payload


def module(*sections: bytes) -> bytes:
    return b"\0asm\x01\0\0\0" + b"".join(sections)


FUNC_VOID = b"\x60\x00\x00"  # () -> ()
FUNC_I32 = b"\x60\x00\x01\x7f"  # () -> i32
I32_CONST, END, DROP, LOOP, VOID = 0x41, 0x0B, 0x1A, 0x03, 0x40


def body(code: bytes, locals_: bytes = b"\x00") -> bytes:
    inner = locals_ + code + bytes([END])
    return uleb(len(inner)) + inner


def export_func(export: str, index: int) -> bytes:
    return name(export) + b"\x00" + uleb(index)


def nested_loops(depth: int = 80_000) -> bytes:
    """One function of `depth` nested empty loops (3 bytes each): fuel and epoch checks at every loop header
    make compile time grow faster than the size."""
    code = bytes([LOOP, VOID]) * depth + bytes([END]) * depth
    return module(
        section(1, vec([FUNC_VOID])),
        section(3, vec([uleb(0)])),
        section(7, vec([export_func("run", 0)])),
        section(10, vec([body(code)])),
    )


def data_segments(count: int = 100_000, pages: int = 16) -> bytes:
    """One memory and `count` one-byte active data segments at distinct offsets: a compiler that copies
    segments instead of building a memory image does work (and keeps memory) per segment."""
    span = pages * 65536

    def segment(i: int) -> bytes:
        return b"\x00" + bytes([I32_CONST]) + sleb((i * 7) % span) + bytes([END]) + vec([bytes([i & 0xFF])])

    return module(
        section(5, vec([b"\x01" + uleb(pages) + uleb(pages)])),
        section(7, vec([name("memory") + b"\x02\x00"])),
        section(11, vec(segment(i) for i in range(count))),
    )


def huge_function(instructions: int = 1_000_000) -> bytes:
    """One function whose body is `instructions` (i32.const; drop) pairs (a few MB of code)."""
    code = bytes([I32_CONST, 0x01, DROP]) * instructions
    return module(
        section(1, vec([FUNC_VOID])),
        section(3, vec([uleb(0)])),
        section(7, vec([export_func("run", 0)])),
        section(10, vec([body(code)])),
    )


def many_functions(count: int = 100_000) -> bytes:
    """`count` tiny functions, each its own compilation unit."""
    return module(
        section(1, vec([FUNC_I32])),
        section(3, vec(uleb(0) for _ in range(count))),
        section(7, vec([export_func("run", 0)])),
        section(10, vec(body(bytes([I32_CONST]) + sleb(i & 0x3F)) for i in range(count))),
    )


BIG: dict[str, Callable[[], bytes]] = {
    "nested_loops_80000": nested_loops,
    "data_segments_100000": data_segments,
    "huge_function_1m": huge_function,
    "many_functions_100000": many_functions,
}

# -- wasm features that are switched off (worker/sandbox/engine.py) -----------------------------------
# name -> (WAT, the feature the rejection must name)

FEATURES: dict[str, tuple[str, str]] = {
    "shared_memory": ('(module (memory (export "memory") 1 1 shared))', "threads"),
    "atomics": (
        '(module (memory 1) (func (export "run") (result i32) (i32.atomic.load (i32.const 0))))',
        "threads",
    ),
    "gc_struct": ('(module (type $s (struct (field i32))) (func (export "run") (result anyref) (ref.null any)))', "gc"),
    "function_references": (
        '(module (type $f (func)) (func $g) (elem declare func $g) (func (export "run") (call_ref $f (ref.func $g))))',
        "function references",
    ),
    "memory64": ('(module (memory (export "memory") i64 1))', "memory64"),
    "multi_memory": ('(module (memory (export "memory") 1) (memory $two 1))', "multi-memory"),
    "exceptions": ('(module (tag $e) (func (export "run") (throw $e)))', "exceptions"),
    "relaxed_simd": (
        '(module (func (export "run") (result v128)'
        " (f32x4.relaxed_madd (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0) (v128.const i32x4 0 0 0 0))))",
        "relaxed SIMD",
    ),
    "tail_call": ('(module (func $f (export "run") (return_call $f)))', "tail calls"),
    "wide_arithmetic": (
        '(module (func (export "run") (param i64 i64 i64 i64) (result i64 i64)'
        " (i64.add128 (local.get 0) (local.get 1) (local.get 2) (local.get 3))))",
        "wide arithmetic",
    ),
    "custom_page_sizes": ('(module (memory (export "memory") 1 (pagesize 1)))', "custom page sizes"),
    "stack_switching": (
        '(module (type $ft (func)) (type $ct (cont $ft)) (func (export "run") (param (ref null $ct))))',
        "stack switching",
    ),
}

# The same for a component: a core module inside it that uses a switched-off proposal.
COMPONENT_FEATURES: dict[str, tuple[str, str]] = {
    "component_shared_memory": ("(component (core module (memory 1 1 shared)))", "threads"),
    "component_exceptions": ('(component (core module (tag $e) (func (export "run") (throw $e))))', "exceptions"),
}

# Instantiation limits: valid modules that must be refused at instantiation (store limits).
LIMITS: dict[str, str] = {
    # 10 million table elements: 80 MB of host memory that the memory cap does not count.
    "huge_table": '(module (table 10000000 funcref) (func (export "run") (result i32) (i32.const 0)))',
    # A small table grown by a loop of table.grow until refused; answers the count as an i32.
    "table_grow": (
        '(module (table $t 1 funcref) (memory (export "memory") 1)'
        ' (func (export "run") (result i32) (local $n i32)'
        " (block $done (loop $more"
        " (br_if $done (i32.eq (table.grow $t (ref.null func) (i32.const 65536)) (i32.const -1)))"
        " (local.set $n (i32.add (local.get $n) (i32.const 1))) (br $more)))"
        " (local.get $n)))"
    ),
    # Many tables (reference types): each is a host allocation.
    "many_tables": "(module "
    + " ".join("(table 1 funcref)" for _ in range(100))
    + ' (func (export "run") (result i32) (i32.const 0)))',
}

# -- WASI host calls -----------------------------------------------------------------------------------

GREET = """
  (memory (export "memory") 2)
  (data (i32.const 16) "Hello World, ")
  (global $heap (mut i32) (i32.const 4096))
  (func $alloc (export "alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $len)) (i32.const 7)) (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.shl (memory.size) (i32.const 16)))
      (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap)
                                                                     (i32.shl (memory.size) (i32.const 16)))
                                                              (i32.const 16))
                                              (i32.const 1)))
                        (i32.const -1))
              (then (return (i32.const 0))))))
    (local.get $p))
  (func (export "dealloc") (param i32 i32))
  ;; "errno=NN" for the errno of the last host call, packed like the greeting
  (data (i32.const 48) "errno=")
  (func $answer_errno (result i64)
    (local $out i32)
    (local.set $out (call $alloc (i32.const 8)))
    (memory.copy (local.get $out) (i32.const 48) (i32.const 6))
    (i32.store8 offset=6 (local.get $out) (i32.add (i32.const 48) (i32.div_u (global.get $errno) (i32.const 10))))
    (i32.store8 offset=7 (local.get $out) (i32.add (i32.const 48) (i32.rem_u (global.get $errno) (i32.const 10))))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32)) (i64.const 8)))
  ;; the greeting for the name at (ptr, len), packed as (out << 32) | (len + 14)
  (func $answer (param $ptr i32) (param $len i32) (result i64)
    (local $out i32)
    (local.set $out (call $alloc (i32.add (local.get $len) (i32.const 14))))
    (memory.copy (local.get $out) (i32.const 16) (i32.const 13))
    (memory.copy (i32.add (local.get $out) (i32.const 13)) (local.get $ptr) (local.get $len))
    (i32.store8 (i32.add (local.get $out) (i32.add (local.get $len) (i32.const 13))) (i32.const 33))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.add (local.get $len) (i32.const 14)))))
"""


def wasi_module(doc: str, imports: str, body_: str) -> str:
    """A packed module whose `greet` runs `body_` (which may use $ptr/$len) and then answers "errno=NN" with
    the errno of its host call (kept in global $errno, also exported as `errno`), or the greeting when the
    body set none."""
    return (
        f";; {doc}\n(module\n{imports}\n"
        '  (global $errno (export "errno") (mut i32) (i32.const -1))\n'
        f"{GREET}"
        '  (func (export "greet") (param $ptr i32) (param $len i32) (result i64)\n'
        f"{body_}\n"
        "    (if (result i64) (i32.ge_s (global.get $errno) (i32.const 0))\n"
        "      (then (call $answer_errno))\n"
        "      (else (call $answer (local.get $ptr) (local.get $len)))))\n)\n"
    )


def _imp(func: str, params: str, results: str = "(result i32)") -> str:
    return f'  (import "wasi_snapshot_preview1" "{func}" (func ${func} {params} {results}))'


WASI: dict[str, str] = {
    # one clock subscription, relative, 10 s: subscription at 1024 (48 bytes), event at 1100, nevents at 1200
    "poll_sleep_10s": wasi_module(
        "poll_oneoff with one 10 s relative clock subscription",
        _imp("poll_oneoff", "(param i32 i32 i32 i32)"),
        "    (i32.store8 (i32.const 1032) (i32.const 0))        ;; tag: clock\n"
        "    (i32.store (i32.const 1040) (i32.const 1))          ;; clock id: monotonic\n"
        "    (i64.store (i32.const 1048) (i64.const 10000000000)) ;; timeout: 10 s\n"
        "    (i64.store (i32.const 1056) (i64.const 0))          ;; precision\n"
        "    (i32.store16 (i32.const 1064) (i32.const 0))        ;; flags: relative\n"
        "    (global.set $errno (call $poll_oneoff (i32.const 1024) (i32.const 1100) (i32.const 1) (i32.const 1200)))",
    ),
    # 1 ms, well inside any deadline: must return at once with the clock event
    "poll_sleep_1ms": wasi_module(
        "poll_oneoff with one 1 ms relative clock subscription",
        _imp("poll_oneoff", "(param i32 i32 i32 i32)"),
        "    (i32.store8 (i32.const 1032) (i32.const 0))\n"
        "    (i32.store (i32.const 1040) (i32.const 1))\n"
        "    (i64.store (i32.const 1048) (i64.const 1000000))\n"
        "    (global.set $errno (call $poll_oneoff (i32.const 1024) (i32.const 1100) (i32.const 1) (i32.const 1200)))",
    ),
    # poll_oneoff in a loop of 1 ms sleeps: the slept time adds up against the deadline
    "poll_sleep_loop": wasi_module(
        "poll_oneoff 1 ms, forever",
        _imp("poll_oneoff", "(param i32 i32 i32 i32)"),
        "    (i32.store8 (i32.const 1032) (i32.const 0))\n"
        "    (i32.store (i32.const 1040) (i32.const 1))\n"
        "    (i64.store (i32.const 1048) (i64.const 1000000))\n"
        "    (loop $again\n"
        "      (drop (call $poll_oneoff (i32.const 1024) (i32.const 1100) (i32.const 1) (i32.const 1200)))\n"
        "      (br $again))",
    ),
    # fd_write(1, iovs=[(0, 1 GiB)]): the claimed length is far beyond the memory
    "fd_write_1gib": wasi_module(
        "fd_write of one iovec claiming 1 GiB",
        _imp("fd_write", "(param i32 i32 i32 i32)"),
        "    (i32.store (i32.const 1024) (i32.const 0))\n"
        "    (i32.store (i32.const 1028) (i32.const 1073741824))\n"
        "    (global.set $errno (call $fd_write (i32.const 1) (i32.const 1024) (i32.const 1) (i32.const 1200)))",
    ),
    # fd_write(1, iovs=[(0, 64 KiB)] * 1000): 62.5 MiB in one call from 64 KiB of memory
    "fd_write_many_iovecs": wasi_module(
        "fd_write of 1,000 iovecs of 64 KiB each (the same 64 KiB)",
        _imp("fd_write", "(param i32 i32 i32 i32)"),
        "    (local $i i32)\n"
        "    (loop $fill\n"
        "      (i32.store (i32.add (i32.const 65536) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0))\n"
        "      (i32.store (i32.add (i32.const 65540) (i32.shl (local.get $i) (i32.const 3))) (i32.const 65536))\n"
        "      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
        "      (br_if $fill (i32.lt_u (local.get $i) (i32.const 1000))))\n"
        "    (global.set $errno (call $fd_write (i32.const 1) (i32.const 65536) (i32.const 1000) (i32.const 1200)))",
    ),
    # fd_write(1, iovs=[(0, 64 KiB)] * 2000): more iovecs than IOV_MAX
    "fd_write_too_many_iovecs": wasi_module(
        "fd_write of 2,000 iovecs of 64 KiB each (the same 64 KiB)",
        _imp("fd_write", "(param i32 i32 i32 i32)"),
        "    (local $i i32)\n"
        "    (loop $fill\n"
        "      (i32.store (i32.add (i32.const 65536) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0))\n"
        "      (i32.store (i32.add (i32.const 65540) (i32.shl (local.get $i) (i32.const 3))) (i32.const 65536))\n"
        "      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
        "      (br_if $fill (i32.lt_u (local.get $i) (i32.const 2000))))\n"
        "    (global.set $errno (call $fd_write (i32.const 1) (i32.const 65536) (i32.const 2000) (i32.const 1200)))",
    ),
    # fd_write of 64 KiB to stdout, again and again: bytes cost fuel
    "fd_write_loop": wasi_module(
        "fd_write of 64 KiB in an endless loop",
        _imp("fd_write", "(param i32 i32 i32 i32)"),
        "    (i32.store (i32.const 1024) (i32.const 0))\n"
        "    (i32.store (i32.const 1028) (i32.const 65536))\n"
        "    (loop $again\n"
        "      (drop (call $fd_write (i32.const 1) (i32.const 1024) (i32.const 1) (i32.const 1200)))\n"
        "      (br $again))",
    ),
    # random_get(0, 1 GiB)
    "random_get_1gib": wasi_module(
        "random_get of 1 GiB",
        _imp("random_get", "(param i32 i32)"),
        "    (global.set $errno (call $random_get (i32.const 0) (i32.const 1073741824)))",
    ),
    # random_get of 16 bytes (a hash seed): must work
    "random_get_16": wasi_module(
        "random_get of 16 bytes into 1024",
        _imp("random_get", "(param i32 i32)"),
        "    (global.set $errno (call $random_get (i32.const 1024) (i32.const 16)))",
    ),
    # random_get of 64 KiB, forever
    "random_get_loop": wasi_module(
        "random_get of 64 KiB in an endless loop",
        _imp("random_get", "(param i32 i32)"),
        "    (loop $again (drop (call $random_get (i32.const 65536) (i32.const 65536))) (br $again))",
    ),
    # spin until the monotonic clock has advanced 10 s
    "clock_spin": wasi_module(
        "spins on clock_time_get(monotonic) until 10 s have passed",
        _imp("clock_time_get", "(param i32 i64 i32)"),
        "    (local $start i64)\n"
        "    (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 1024)))\n"
        "    (local.set $start (i64.load (i32.const 1024)))\n"
        "    (loop $spin\n"
        "      (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 1024)))\n"
        "      (br_if $spin (i64.lt_u (i64.sub (i64.load (i32.const 1024)) (local.get $start))\n"
        "                             (i64.const 10000000000))))",
    ),
    # the clocks must be readable and sane; stores the realtime clock at 1024 and monotonic at 1032
    "clock_read": wasi_module(
        "reads the realtime and the monotonic clock and their resolutions",
        _imp("clock_time_get", "(param i32 i64 i32)") + "\n" + _imp("clock_res_get", "(param i32 i32)"),
        "    (global.set $errno (i32.or\n"
        "      (i32.or (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 1024))\n"
        "              (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 1032)))\n"
        "      (i32.or (call $clock_res_get (i32.const 0) (i32.const 1040))\n"
        "              (call $clock_res_get (i32.const 1) (i32.const 1048)))))",
    ),
    # fd_read on stdin into 64 KiB: stdin is empty
    "fd_read_stdin": wasi_module(
        "fd_read of stdin",
        _imp("fd_read", "(param i32 i32 i32 i32)"),
        "    (i32.store (i32.const 1024) (i32.const 65536))\n"
        "    (i32.store (i32.const 1028) (i32.const 65536))\n"
        "    (global.set $errno (call $fd_read (i32.const 0) (i32.const 1024) (i32.const 1) (i32.const 1200)))",
    ),
    # path_open("/etc/passwd") relative to fd 3 (which a host with preopens would have)
    "path_open": wasi_module(
        "path_open of etc/passwd under fd 3",
        _imp("path_open", "(param i32 i32 i32 i32 i32 i64 i64 i32 i32)") + '\n  (data (i32.const 2048) "etc/passwd")',
        "    (global.set $errno (call $path_open (i32.const 3) (i32.const 0) (i32.const 2048) (i32.const 10)\n"
        "      (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 1200)))",
    ),
    # proc_exit(7)
    "proc_exit": wasi_module(
        "proc_exit(7)",
        _imp("proc_exit", "(param i32)", ""),
        "    (call $proc_exit (i32.const 7))",
    ),
    # sock_accept on fd 3
    "sock_accept": wasi_module(
        "sock_accept on fd 3",
        _imp("sock_accept", "(param i32 i32 i32)"),
        "    (global.set $errno (call $sock_accept (i32.const 3) (i32.const 0) (i32.const 1200)))",
    ),
    # sched_yield forever
    "sched_yield_loop": wasi_module(
        "sched_yield in an endless loop",
        _imp("sched_yield", ""),
        "    (loop $again (drop (call $sched_yield)) (br $again))",
    ),
}


def write(directory: Path, stem: str, wat: str) -> None:
    import wasmtime  # only needed to assemble; the binary encoders above need nothing

    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{stem}.wat").write_text(wat if wat.endswith("\n") else wat + "\n")
    (directory / f"{stem}.wasm").write_bytes(wasmtime.wat2wasm(wat))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=Path, help="also write the big modules into this directory")
    args = parser.parse_args(argv)
    for stem, (wat, feature) in FEATURES.items():
        write(COMPILE_DIR, f"feature_{stem}", f";; uses {feature}\n{wat}")
    for stem, (wat, feature) in COMPONENT_FEATURES.items():
        write(COMPILE_DIR, f"feature_{stem}", f";; uses {feature}\n{wat}")
    for stem, wat in LIMITS.items():
        write(COMPILE_DIR, f"limit_{stem}", wat)
    for stem, wat in WASI.items():
        write(WASI_DIR, stem, wat)
    if args.big:
        args.big.mkdir(parents=True, exist_ok=True)
        for stem, make in BIG.items():
            (args.big / f"{stem}.wasm").write_bytes(make())
    return 0


if __name__ == "__main__":
    sys.exit(main())
