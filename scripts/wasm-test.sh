#!/usr/bin/env bash
# Browser tests of one workspace crate: its integration tests (tests/*.rs),
# built for wasm32-unknown-unknown by the route scripts/lib.sh detects, run by
# wasm-bindgen-test-runner in headless Chromium through chromedriver.
#
#   scripts/wasm-test.sh CRATE [extra cargo test args...]
#   scripts/wasm-test.sh echo-vault
#   scripts/wasm-test.sh echo-vault --test shared_worker
#
# - The runner is the wasm-bindgen-test-runner of the Cargo.lock version of
#   wasm-bindgen, from setup.sh's cache (~/.cache/echo/wasm-bindgen-<ver>/).
# - Chromium's flags and prefs come from the crate's webdriver.json.
# - Each test binary starts its own browser (~5 s): crates keep few binaries
#   (echo-vault: one per kind of worker). Only integration tests run — a lib's
#   unit tests are native (`cargo test`), so no browser starts for them.
# - chromedriver leaves a ~60 MB profile per browser in $TMPDIR: it points at
#   a folder under target/ that is removed afterwards.
# - WASM_BINDGEN_TEST_TIMEOUT (seconds per test binary, default here 300; the
#   runner's own default of 20 s is too short for the storage contract on a
#   busy 2-core machine) can be overridden.
# Run scripts/setup.sh first (make does).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

crate="${1:?usage: scripts/wasm-test.sh CRATE [cargo test args...]}"
shift
route="$(wasm_route)"
wasm_env
cd "$ECHO_ROOT"

# `cargo pkgid -p CRATE` = path+file:///abs/dir#name@version (or #version).
pkgid="$("$WASM_CARGO" pkgid -p "$crate" 2>/dev/null)" || die "no workspace crate named $crate"
crate_dir="${pkgid#path+file://}"
crate_dir="${crate_dir%%#*}"
[ -d "$crate_dir" ] || die "cannot find $crate's folder (cargo pkgid says $pkgid)"
[ -f "$crate_dir/webdriver.json" ] || die "$crate_dir/webdriver.json is missing (Chromium's flags)"

wbg="$(wasm_bindgen_version)"
[ -n "$wbg" ] || die "Cargo.lock names no wasm-bindgen"
runner="$(dirname "$(wasm_bindgen_bin "$wbg")")/wasm-bindgen-test-runner"
[ -x "$runner" ] || die "missing $runner: run scripts/setup.sh"
for tool in /usr/bin/chromium /usr/bin/chromedriver; do
  [ -x "$tool" ] || die "missing $tool: run scripts/setup.sh"
done

export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$runner"
export CHROMEDRIVER=/usr/bin/chromedriver
# Test files without a wasm_bindgen_test_configure! would run in Node otherwise.
export WASM_BINDGEN_USE_BROWSER=1
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-300}"
tmp="$ECHO_ROOT/target/chrome-tmp.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
export TMPDIR="$tmp"

log "testing $crate in headless Chromium (route: $route, wasm-bindgen $wbg)"
started=$SECONDS
# webdriver.json is read from the current directory.
cd "$crate_dir"
args=("$@")
((${#args[@]})) || args=(--test '*')
"$WASM_CARGO" test --target "$WASM_TARGET" -p "$crate" "${WASM_CARGO_ARGS[@]}" "${args[@]}"
log "ok: $crate's browser tests passed in $((SECONDS - started)) s"
