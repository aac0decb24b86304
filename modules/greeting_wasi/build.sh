#!/usr/bin/env bash
# Builds the WASI 0.2 greeting and its hostile twin with wasm-tools (embed + new), from greeting_wasi.wat
# and wit/ (the world, and the parts of the wasi:io, wasi:cli, wasi:filesystem packages it uses):
#
#   world greeter    -> modules/greeting_wasi/greeting_wasi.wasm
#       imports wasi:cli/stdout, wasi:cli/environment, wasi:filesystem/preopens (and wasi:io/streams)
#   world lookalike  -> tests/corpora/hostile_components/non_wasi_import.wasm
#       the same code, its environment imported from wasmq:host/environment: must be ModuleRejected
#   world network-probe (network_probe.wat) -> tests/corpora/hostile_components/network_probe.wasm
#       tries a name lookup, a TCP socket and a connect (wasi:sockets): must be refused each time
#
# Built twice; the results must be byte-identical. Usage: modules/greeting_wasi/build.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

die() { echo "greeting_wasi/build.sh: $*" >&2; exit 1; }

# shellcheck source=../../modules/reproducible.sh
source "$ROOT/modules/reproducible.sh"
find_wasm_tools

build_into() { # build_into DIR
    mkdir -p "$1"
    "$WASM_TOOLS" component embed "$HERE/wit" --world greeter "$HERE/greeting_wasi.wat" -o "$1/core.wasm"
    "$WASM_TOOLS" component new "$1/core.wasm" -o "$1/greeting_wasi.wasm"
    sed 's|"wasi:cli/environment@0.2.0"|"wasmq:host/environment@0.1.0"|' "$HERE/greeting_wasi.wat" > "$1/twin.wat"
    "$WASM_TOOLS" component embed "$HERE/wit" --world lookalike "$1/twin.wat" -o "$1/core.wasm"
    "$WASM_TOOLS" component new "$1/core.wasm" -o "$1/non_wasi_import.wasm"
    "$WASM_TOOLS" component embed "$HERE/wit" --world network-probe "$HERE/network_probe.wat" -o "$1/core.wasm"
    "$WASM_TOOLS" component new "$1/core.wasm" -o "$1/network_probe.wasm"
    "$WASM_TOOLS" validate "$1/network_probe.wasm"
    "$WASM_TOOLS" validate "$1/greeting_wasi.wasm"
    "$WASM_TOOLS" validate "$1/non_wasi_import.wasm"
    rm "$1/core.wasm" "$1/twin.wat"
}

build_twice build_into

cp "$SCRATCH/a/greeting_wasi.wasm" "$HERE/greeting_wasi.wasm"
for f in non_wasi_import network_probe; do
    cp "$SCRATCH/a/$f.wasm" "$ROOT/tests/corpora/hostile_components/$f.wasm"
done
for f in modules/greeting_wasi/greeting_wasi.wasm tests/corpora/hostile_components/{non_wasi_import,network_probe}.wasm; do
    printf '  %-52s %6d bytes  %s\n' "$f" "$(wc -c < "$ROOT/$f")" "$(sha256sum "$ROOT/$f" | cut -d' ' -f1)"
done
