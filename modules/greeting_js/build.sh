#!/usr/bin/env bash
# Builds the JavaScript greeting component and installs it next to its source:
#
#   greeting.js  export function greet(name) -> "Hello World, <name>!", for the world
#                `greeter` of modules/greeting_component/greeting.wit
#   build.mjs    componentize-js (SpiderMonkey, pre-initialised with greeting.js by wizer),
#                every WASI feature disabled: the component imports nothing. (Not the
#                `jco componentize` command: see build.mjs for why.)
#
# Toolchain: npm packages pinned in package.json / package-lock.json, installed into
# node_modules by modules/toolchains.sh (npm ci).
#
# Built twice; the two builds are compared but NOT required to be byte-identical: the
# pre-initialised SpiderMonkey heap differs from build to build (its size too). Both builds
# are checked to export the world and import nothing.
#
# Usage: modules/greeting_js/build.sh     (from any directory)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

die() { echo "greeting_js/build.sh: $*" >&2; exit 1; }

# shellcheck source=../../modules/reproducible.sh
source "$ROOT/modules/reproducible.sh"
find_wasm_tools

[[ -d "$HERE/node_modules/@bytecodealliance/componentize-js" ]] || die "no componentize-js (run modules/toolchains.sh)"
echo "node: $(node --version)  componentize-js: $(cd "$HERE" && node -p 'require("./node_modules/@bytecodealliance/componentize-js/package.json").version')"

build_into() { # build_into DIR: build.mjs resolves componentize-js from this folder, reads sources from DIR
    mkdir -p "$1/src"
    cp "$HERE/greeting.js" "$ROOT/modules/greeting_component/greeting.wit" "$1/src/"
    (cd "$1/src" && node "$HERE/build.mjs" "$1/greeting_js.wasm" >/dev/null)
    rm -rf "$1/src"
    "$WASM_TOOLS" component wit "$1/greeting_js.wasm" | grep -q 'export greet: func(name: string) -> string;' \
        || die "greeting_js.wasm does not export greet: func(name: string) -> string"
    if "$WASM_TOOLS" component wit "$1/greeting_js.wasm" | grep -q '^ *import '; then
        die "greeting_js.wasm imports something; it must import nothing"
    fi
}

echo "building (1/2)"; build_into "$SCRATCH/a"
echo "building (2/2)"; build_into "$SCRATCH/b"
if cmp -s "$SCRATCH/a/greeting_js.wasm" "$SCRATCH/b/greeting_js.wasm"; then
    echo "reproducible: both builds are byte-identical"
else
    echo "not reproducible (expected for componentize-js): $(wc -c < "$SCRATCH/a/greeting_js.wasm") and" \
         "$(wc -c < "$SCRATCH/b/greeting_js.wasm") bytes; keeping the first"
fi

cp "$SCRATCH/a/greeting_js.wasm" "$HERE/greeting_js.wasm"
printf '  %-52s %8d bytes  %s\n' "modules/greeting_js/greeting_js.wasm" \
    "$(wc -c < "$HERE/greeting_js.wasm")" "$(sha256sum "$HERE/greeting_js.wasm" | cut -d' ' -f1)"
