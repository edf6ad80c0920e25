#!/usr/bin/env bash
# Release build (profile wasm-release, ECHO_WASM_PROFILE overrides) of one workspace crate for wasm32-unknown-unknown, by the route
# scripts/lib.sh detects (rustup's wasm32 std, or Debian's rustc-web with
# -Zbuild-std).
#
#   scripts/wasm-build.sh CRATE [extra cargo build args...]
#   scripts/wasm-build.sh echo-core
#
# A library crate (rlib) is compiled and that is all: it proves the crate builds
# for the browser. A crate that yields a .wasm (cdylib) using wasm-bindgen is then
# run through the wasm-bindgen CLI of the Cargo.lock version and `wasm-opt -Oz`
# (ECHO_WASM_OPT=-O3 say; measured 2026-12-02: opt-level 3 for automerge, hexane
# and echo-core took reload → first query on 100k objects from 1.21 to 0.90 s
# but the wasm from 893 to 1,097 KiB gzip, over the 1 MB budget)
# into pkg/CRATE/ (ECHO_PKG_DIR overrides; WASM_BINDGEN_TARGET, default "web").
# ECHO_WASM_TARGET_DIR: a cargo target dir of its own (a build with other
# features, so that the two do not rebuild each other).
# Run scripts/setup.sh first (make does).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

crate="${1:?usage: scripts/wasm-build.sh CRATE [cargo build args...]}"
shift
route="$(wasm_route)"
wasm_env
cd "$ECHO_ROOT"

log "building $crate for $WASM_TARGET (release, route: $route, target dir: ${CARGO_TARGET_DIR#"$ECHO_ROOT"/})"
started=$SECONDS
messages="$(mktemp)"
trap 'rm -f "$messages"' EXIT
# JSON messages go to a file (to find the .wasm artifacts); diagnostics are
# rendered on stderr as usual.
"$WASM_CARGO" build --profile "${ECHO_WASM_PROFILE:-wasm-release}" --target "$WASM_TARGET" -p "$crate" \
  "${WASM_CARGO_ARGS[@]}" --message-format=json-render-diagnostics "$@" >"$messages"
log "built $crate in $((SECONDS - started)) s"

# Only cdylib/bin targets of the wasm32 build produce .wasm files.
mapfile -t wasms < <(grep '"reason":"compiler-artifact"' "$messages" |
  grep -o '"[^"]*\.wasm"' | tr -d '"' | sort -u)
if ((${#wasms[@]} == 0)); then
  log "ok: $crate is a library for $WASM_TARGET (no .wasm artifact to bind)"
  exit 0
fi

for wasm in "${wasms[@]}"; do
  if ! grep -q '__wbindgen' "$wasm"; then
    log "ok: $wasm ($(stat -c %s "$wasm") bytes; no wasm-bindgen imports)"
    continue
  fi
  wbg="$(wasm_bindgen_version)"
  [ -n "$wbg" ] || die "$wasm uses wasm-bindgen but Cargo.lock names no wasm-bindgen"
  bindgen="$(wasm_bindgen_bin "$wbg")"
  wasm_opt="$(npm_tools_bin wasm-opt)"
  [ -x "$bindgen" ] || die "missing $bindgen: run scripts/setup.sh"
  [ -x "$wasm_opt" ] || die "missing $wasm_opt: run scripts/setup.sh"
  name="$(basename "$wasm" .wasm)"
  out="${ECHO_PKG_DIR:-$ECHO_ROOT/pkg/$crate}"
  # Binding and wasm-opt take ~1.5 min: skip them when cargo's output is the
  # one already bound (same bytes, same tools).
  opt_flag="${ECHO_WASM_OPT:--Oz}"
  stamp="$(sha256sum "$wasm" | cut -d' ' -f1) wasm-bindgen $wbg $("$wasm_opt" --version) $opt_flag"
  if [ -f "$out/.built-from" ] && [ "$(cat "$out/.built-from")" = "$stamp" ] &&
     [ -f "$out/${name}_bg.wasm" ] && [ -f "$out/${name}.js" ]; then
    log "ok: $out/${name}_bg.wasm is up to date ($(stat -c %s "$out/${name}_bg.wasm") bytes)"
    continue
  fi
  rm -rf "$out"
  "$bindgen" --target "${WASM_BINDGEN_TARGET:-web}" --out-dir "$out" "$wasm"
  # Debian's binaryen 108 breaks this wasm at run time; npm binaryen 132 is right.
  "$wasm_opt" "$opt_flag" "$out/${name}_bg.wasm" -o "$out/${name}_bg.opt.wasm"
  mv "$out/${name}_bg.opt.wasm" "$out/${name}_bg.wasm"
  echo "$stamp" >"$out/.built-from"
  log "ok: $out/${name}_bg.wasm ($(stat -c %s "$out/${name}_bg.wasm") bytes after wasm-opt $opt_flag)"
done
