#!/usr/bin/env bash
# Builds the Extism greeting plugin (AssemblyScript) and installs it next to its source:
#
#   greeting.ts  greet() -> i32 on @extism/as-pdk; asc (assemblyscript) compiles it
#                -O3, stub runtime (one call per instance: nothing to collect), and the
#                compiler's abort pointed at greeting.ts's own (Extism provides no env.abort)
#
# Toolchain: npm packages pinned in package.json / package-lock.json, installed into
# node_modules by modules/toolchains.sh (npm ci). Built twice, in two scratch directories;
# the two results must be byte-identical before the file is copied into the tree.
#
# Usage: modules/greeting_extism/build.sh     (from any directory)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

die() { echo "greeting_extism/build.sh: $*" >&2; exit 1; }

# shellcheck source=../../modules/reproducible.sh
source "$ROOT/modules/reproducible.sh"

ASC="$HERE/node_modules/.bin/asc"
[[ -x "$ASC" ]] || die "no $ASC (run modules/toolchains.sh)"
echo "asc:      $("$ASC" --version)  (@extism/as-pdk $(cd "$HERE" && node -p 'require("./node_modules/@extism/as-pdk/package.json").version'))"

build_into() { # build_into DIR
    mkdir -p "$1"
    # asc names the abort function by module path ("greeting/abort"), so it runs in this folder.
    (cd "$HERE" && "$ASC" greeting.ts --outFile "$1/greeting_extism.wasm" \
        --optimizeLevel 3 --shrinkLevel 0 --runtime stub --use abort=greeting/abort)
}

build_twice build_into

cp "$SCRATCH/a/greeting_extism.wasm" "$HERE/greeting_extism.wasm"
printf '  %-52s %8d bytes  %s\n' "modules/greeting_extism/greeting_extism.wasm" \
    "$(wc -c < "$HERE/greeting_extism.wasm")" "$(sha256sum "$HERE/greeting_extism.wasm" | cut -d' ' -f1)"
