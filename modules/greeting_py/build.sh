#!/usr/bin/env bash
# Builds the Python greeting component and installs it next to its source:
#
#   app.py  class WitWorld: greet(name) -> "Hello World, <name>!", for the world `greeter`
#           of modules/greeting_component/greeting.wit
#
#   componentize-py -d greeting.wit -w greeter componentize --stub-wasi app
#       -> greeting_py.wasm: CPython compiled to wasm, pre-initialised with app.py
#          imported (a heap snapshot), every WASI import replaced by a trapping stub,
#          so the component imports nothing
#   componentize-py -d greeting.wit -w greeter componentize app
#       -> greeting_py_wasi.wasm: the same, with its WASI 0.2 imports kept (wasi:cli, io, clocks,
#          random, filesystem, sockets), run through wasmtime's WASI host (built once, not compared)
#
# Toolchain: componentize-py from PyPI, pinned in modules/toolchains.sh, installed into
# modules/greeting_py/.venv (COMPONENTIZE_PY overrides).
#
# Built twice; the two builds are compared but NOT required to be byte-identical:
# componentize-py pre-initialises the interpreter at build time with the build machine's
# randomness (Python's hash seed and PRNG state end up in the snapshot), so each build's
# heap, and the file's size, differ. Both builds are checked to export the world.
#
# Usage: modules/greeting_py/build.sh     (from any directory)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

die() { echo "greeting_py/build.sh: $*" >&2; exit 1; }

# shellcheck source=../../modules/reproducible.sh
source "$ROOT/modules/reproducible.sh"
find_wasm_tools

COMPONENTIZE_PY="${COMPONENTIZE_PY:-$HERE/.venv/bin/componentize-py}"
[[ -x "$COMPONENTIZE_PY" ]] || die "no $COMPONENTIZE_PY (run modules/toolchains.sh)"
echo "componentize-py: $("$COMPONENTIZE_PY" --version)"

componentize() { # componentize DIR OUT [--stub-wasi]: from a clean copy of the sources (no __pycache__)
    local dir="$1" out="$2"
    shift 2
    mkdir -p "$dir/src"
    cp "$HERE/app.py" "$ROOT/modules/greeting_component/greeting.wit" "$dir/src/"
    (cd "$dir/src" && PYTHONDONTWRITEBYTECODE=1 "$COMPONENTIZE_PY" -d greeting.wit -w greeter \
        componentize "$@" app -o "$dir/$out" >/dev/null)
    rm -rf "$dir/src"
    "$WASM_TOOLS" component wit "$dir/$out" | grep -q 'export greet: func(name: string) -> string;' \
        || die "$out does not export greet: func(name: string) -> string"
}

build_into() { # build_into DIR
    componentize "$1" greeting_py.wasm --stub-wasi
    if "$WASM_TOOLS" component wit "$1/greeting_py.wasm" | grep -q '^ *import '; then
        die "greeting_py.wasm imports something; it must import nothing"
    fi
}

build_twice build_into "componentize-py snapshots an interpreter seeded with the build's randomness"

echo "building with WASI 0.2 imports"; componentize "$SCRATCH/w" greeting_py_wasi.wasm
if "$WASM_TOOLS" component wit "$SCRATCH/w/greeting_py_wasi.wasm" | grep '^ *import ' | grep -v ' wasi:'; then
    die "greeting_py_wasi.wasm imports something outside wasi:"
fi

cp "$SCRATCH/a/greeting_py.wasm" "$HERE/greeting_py.wasm"
cp "$SCRATCH/w/greeting_py_wasi.wasm" "$HERE/greeting_py_wasi.wasm"
for f in greeting_py.wasm greeting_py_wasi.wasm; do
    printf '  %-52s %8d bytes  %s\n' "modules/greeting_py/$f" "$(wc -c < "$HERE/$f")" \
        "$(sha256sum "$HERE/$f" | cut -d' ' -f1)"
done
