# shellcheck shell=bash
# Shared by scripts/setup.sh and scripts/wasm-build.sh. Source it; do not run it.
#
# The wasm32 route is detected, never assumed:
#   rustup  — the active rustc has a wasm32-unknown-unknown std (`rustup target add
#             wasm32-unknown-unknown` worked on this machine): plain cargo, target/.
#   debian  — it has not (the project's Debian 12 machines: rustup cannot download
#             that std there): Debian's rustc-web 1.96 + rust-web-src, std built
#             from source with -Zbuild-std, linked by lld-19's wasm-ld, in its own
#             target dir (target/wasm-debian) so it never invalidates the native
#             rustup build cache.

ECHO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# npm tools installed by setup.sh (from scripts/npm-tools): <repo>/.tools/npm.
ECHO_TOOLS_DIR="${ECHO_TOOLS_DIR:-$ECHO_ROOT/.tools}"
# Versioned, immutable builds shared by every clone on this machine (a fresh CI
# clone then skips a ~3-5 min compile): wasm-bindgen-<version>/bin/wasm-bindgen.
ECHO_CACHE_DIR="${ECHO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/echo}"
WASM_TARGET=wasm32-unknown-unknown
DEBIAN_WASM_LD=/usr/lib/llvm-19/bin/wasm-ld

if [ -t 2 ]; then _b=$'\033[1m' _r=$'\033[1;31m' _n=$'\033[0m'; else _b="" _r="" _n=""; fi
log() { printf '%s[%s]%s %s\n' "$_b" "$(basename "$0")" "$_n" "$*" >&2; }
die() { printf '%s[%s] error:%s %s\n' "$_r" "$(basename "$0")" "$_n" "$*" >&2; exit 1; }

# Echoes "rustup" or "debian". ECHO_WASM_ROUTE overrides the detection.
wasm_route() {
  if [ -n "${ECHO_WASM_ROUTE:-}" ]; then echo "$ECHO_WASM_ROUTE"; return; fi
  local sysroot
  sysroot="$(cd "$ECHO_ROOT" && rustc --print sysroot 2>/dev/null)" || sysroot=""
  if [ -n "$sysroot" ] && [ -d "$sysroot/lib/rustlib/$WASM_TARGET/lib" ]; then
    echo rustup
  else
    echo debian
  fi
}

# Sets up the environment of the detected route in the current shell and fills
# WASM_CARGO (the cargo to run) and WASM_CARGO_ARGS (extra build args).
wasm_env() {
  case "$(wasm_route)" in
  rustup)
    WASM_CARGO=cargo
    WASM_CARGO_ARGS=()
    export CARGO_TARGET_DIR="${ECHO_WASM_TARGET_DIR:-${CARGO_TARGET_DIR:-$ECHO_ROOT/target}}"
    ;;
  debian)
    [ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] && [ -x "$DEBIAN_WASM_LD" ] ||
      die "no wasm32 toolchain: run scripts/setup.sh (installs rustc-web cargo-web rust-web-src lld-19)"
    # The rustup proxies in ~/.cargo/bin must not win over Debian's rustc 1.96.
    export PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
    export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$DEBIAN_WASM_LD"
    unset RUSTUP_TOOLCHAIN RUSTC_WRAPPER
    export CARGO_TARGET_DIR="${ECHO_WASM_TARGET_DIR:-$ECHO_ROOT/target/wasm-debian}"
    WASM_CARGO=/usr/bin/cargo
    WASM_CARGO_ARGS=(-Zbuild-std=std,panic_abort)
    ;;
  *) die "unknown ECHO_WASM_ROUTE '$(wasm_route)' (rustup|debian)" ;;
  esac
}

# True when a workspace member depends on wasm-bindgen (or js-sys, web-sys) itself.
# Cargo.lock lists wasm-bindgen as soon as getrandom's wasm_js backend is in the
# tree, which needs no CLI; only a direct user does.
uses_wasm_bindgen() {
  (cd "$ECHO_ROOT" && cargo metadata --no-deps --format-version 1 2>/dev/null) |
    grep -Eq '"name":"(wasm-bindgen[a-z-]*|js-sys|web-sys)",'
}

# The wasm-bindgen version pinned in Cargo.lock (empty when there is none).
wasm_bindgen_version() {
  [ -f "$ECHO_ROOT/Cargo.lock" ] || return 0
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' \
    "$ECHO_ROOT/Cargo.lock"
}

wasm_bindgen_bin() { echo "$ECHO_CACHE_DIR/wasm-bindgen-$1/bin/wasm-bindgen"; }

npm_tools_bin() { echo "$ECHO_TOOLS_DIR/npm/node_modules/.bin/$1"; }
