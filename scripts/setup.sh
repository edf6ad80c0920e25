#!/usr/bin/env bash
# Installs everything the build and the tests need. Idempotent: a second run
# checks and installs nothing. Written for the project's machines (Debian 12,
# root, rustup's stable toolchain without a wasm32 std, node 20 + npm); on other
# machines it installs what it can and says what is missing.
#
#   scripts/setup.sh            everything
#
# What it installs, and when:
#   apt      lld-19 rustc-web cargo-web rust-web-src  when the active rustc has
#            no wasm32-unknown-unknown std (see scripts/lib.sh);
#            chromium chromium-driver                 always (browser tests);
#            redis-server                             always (signaling scale-out tests
#                                                     and bench; they start their own);
#            iproute2                                 always (`ip`: the WebRTC e2e test runs
#                                                     in a network namespace with only lo)
#            firefox-esr webkit2gtk-driver xvfb       always (the cross-browser e2e flows:
#                                                     Firefox over WebDriver BiDi, WebKitGTK
#                                                     through WebKitWebDriver; Xvfb for
#                                                     WebKit, whose MiniBrowser has no headless
#                                                     mode; matchbox-window-manager on it, so
#                                                     that WebKit's popups get the focus)
#            `apt-get update` runs once, only when something is missing.
#   rustup   clippy, rustfmt components when missing.
#   cargo    wasm-bindgen-cli of exactly the version in Cargo.lock, once a
#            workspace crate depends on wasm-bindgen directly (echo-vault
#            does), into ~/.cache/echo/wasm-bindgen-<version>/ (ECHO_CACHE_DIR
#            overrides): wasm-bindgen, and wasm-bindgen-test-runner for
#            scripts/wasm-test.sh. The first install compiles for ~3-5 min.
#   npm      scripts/npm-tools (binaryen's wasm-opt, playwright-core,
#            puppeteer-core) into .tools/npm, at the same moment; no browser
#            download (PUPPETEER_SKIP_DOWNLOAD, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD);
#            and the repository's npm workspaces linked (node_modules/@echo/*).
# cargo-nextest is used when present; scripts/test.sh falls back to cargo test.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi
fi

# --- Debian packages -------------------------------------------------------
apt_packages=(chromium chromium-driver redis-server iproute2 firefox-esr webkit2gtk-driver xvfb matchbox-window-manager)
if [ "$(wasm_route)" = debian ]; then
  apt_packages=(rustc-web cargo-web rust-web-src lld-19 "${apt_packages[@]}")
fi
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if command -v apt-get >/dev/null 2>&1; then
    log "apt: installing ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq "${missing[@]}" </dev/null
  elif [ "$(wasm_route)" = debian ]; then
    die "no apt-get here and no wasm32 std: run 'rustup target add $WASM_TARGET' (and install chromium for browser tests)"
  else
    log "no apt-get here: install chromium + chromedriver yourself for the browser tests"
  fi
fi

# --- rustup components -----------------------------------------------------
if command -v rustup >/dev/null 2>&1; then
  installed="$(cd "$ECHO_ROOT" && rustup component list --installed 2>/dev/null || true)"
  for c in clippy rustfmt; do
    if ! grep -q "^$c" <<<"$installed"; then
      log "rustup: adding component $c"
      (cd "$ECHO_ROOT" && rustup component add "$c")
    fi
  done
else
  command -v cargo-clippy >/dev/null && command -v rustfmt >/dev/null ||
    die "no rustup, and clippy or rustfmt is missing"
fi

# --- wasm-bindgen CLI and npm tools: only once a crate uses wasm-bindgen -------
wbg=""
if uses_wasm_bindgen; then
  wbg="$(wasm_bindgen_version)"
  [ -n "$wbg" ] || die "a crate depends on wasm-bindgen but Cargo.lock has no version of it"
  bin="$(wasm_bindgen_bin "$wbg")"
  runner="$(dirname "$bin")/wasm-bindgen-test-runner"
  if [ ! -x "$bin" ] || [ ! -x "$runner" ] ||
     [ "$("$bin" --version 2>/dev/null | awk '{print $2}')" != "$wbg" ]; then
    root="$(dirname "$(dirname "$bin")")"
    log "cargo: installing wasm-bindgen-cli $wbg into $root (takes ~3-5 min, once per machine)"
    # Built by the host (rustup) toolchain. --locked can fail on this registry
    # (a locked dependency version is missing): try it, then resolve afresh.
    # --force: a half-present install (one binary missing) is redone.
    (cd "$ECHO_ROOT" && cargo install wasm-bindgen-cli --version "=$wbg" --root "$root" --force --locked) ||
      (cd "$ECHO_ROOT" && cargo install wasm-bindgen-cli --version "=$wbg" --root "$root" --force)
  fi

  npm_dir="$ECHO_TOOLS_DIR/npm"
  src="$ECHO_ROOT/scripts/npm-tools"
  if ! cmp -s "$src/package-lock.json" "$npm_dir/package-lock.json" ||
     [ ! -x "$npm_dir/node_modules/.bin/wasm-opt" ]; then
    command -v npm >/dev/null 2>&1 || die "npm is missing (node 20 + npm are expected)"
    log "npm: installing $(tr -d '\n ' <"$src/package.json" | grep -o '"devDependencies":{[^}]*}') into $npm_dir"
    mkdir -p "$npm_dir"
    cp "$src/package.json" "$src/package-lock.json" "$npm_dir/"
    (cd "$npm_dir" && PUPPETEER_SKIP_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
      npm ci --no-audit --no-fund </dev/null)
  fi
fi

# --- npm workspaces: the TypeScript packages import the SDK by name ------------
# client, shell, worker, demo-app and e2e are workspaces of the repository's
# package.json and import @echo/client by name; `npm ci` of just these links
# them into node_modules (nothing to download). The benchmarks' packages (yjs,
# automerge-repo, …) are installed by their first run (bench/browser/run.mjs).
links=(@echo/client @echo/shell @echo/worker @echo/e2e echo-taskboard)
for link in "${links[@]}"; do
  if [ ! -e "$ECHO_ROOT/node_modules/$link/package.json" ]; then
    command -v npm >/dev/null 2>&1 || die "npm is missing (node 20 + npm are expected)"
    log "npm: linking the workspaces (${links[*]}) into node_modules"
    (cd "$ECHO_ROOT" && npm ci --no-audit --no-fund -w client -w shell -w worker -w demo-app -w e2e </dev/null)
    break
  fi
done

log "ok: wasm route '$(wasm_route)'$([ -n "$wbg" ] && echo ", wasm-bindgen $wbg")"
