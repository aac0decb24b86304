#!/usr/bin/env bash
# Builds the JavaScript greeting component and installs it next to its source:
#
#   greeting.js  export function greet(name) -> "Hello World, <name>!", for the world
#                `greeter` of modules/greeting_component/greeting.wit
#
#   jco componentize greeting.js --wit greeting.wit --world-name greeter --disable all
#       -> greeting_js.wasm: StarlingMonkey (SpiderMonkey) pre-initialised with greeting.js by
#          wizer (jco's componentize-js), every WASI feature disabled: it imports nothing.
#          Run with `node --import preopen.mjs`: see there for why.
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

JCO="$HERE/node_modules/@bytecodealliance/jco/dist/jco.js"
[[ -f "$JCO" ]] || die "no jco (run modules/toolchains.sh)"
echo "node: $(node --version)  jco: $(node "$JCO" --version)  componentize-js:" \
    "$(cd "$HERE" && node -p 'require("./node_modules/@bytecodealliance/jco/node_modules/@bytecodealliance/componentize-js/package.json").version')"

build_into() { # build_into DIR: jco runs in a clean copy of the sources, DIR/src (its one preopened directory)
    mkdir -p "$1/src"
    cp "$HERE/greeting.js" "$ROOT/modules/greeting_component/greeting.wit" "$1/src/"
    (cd "$1/src" && node --import "$HERE/preopen.mjs" "$JCO" componentize greeting.js --wit greeting.wit \
        --world-name greeter --disable all -o greeting_js.wasm >/dev/null)
    mv "$1/src/greeting_js.wasm" "$1/greeting_js.wasm"
    rm -rf "$1/src"
    "$WASM_TOOLS" component wit "$1/greeting_js.wasm" | grep -q 'export greet: func(name: string) -> string;' \
        || die "greeting_js.wasm does not export greet: func(name: string) -> string"
    if "$WASM_TOOLS" component wit "$1/greeting_js.wasm" | grep -q '^ *import '; then
        die "greeting_js.wasm imports something; it must import nothing"
    fi
}

build_twice build_into "the pre-initialised SpiderMonkey heap differs from build to build"

cp "$SCRATCH/a/greeting_js.wasm" "$HERE/greeting_js.wasm"
printf '  %-52s %8d bytes  %s\n' "modules/greeting_js/greeting_js.wasm" \
    "$(wc -c < "$HERE/greeting_js.wasm")" "$(sha256sum "$HERE/greeting_js.wasm" | cut -d' ' -f1)"
