# ECHO — the two commands a person needs: `make start` and `make test`.
# Every target installs what it needs first (scripts/setup.sh, idempotent).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# rustup's cargo lives here; a non-login shell (CI) may not have it on PATH.
export PATH := $(HOME)/.cargo/bin:$(PATH)
export CARGO_TERM_COLOR ?= auto

# Crates that must build for the browser (wasm32-unknown-unknown, release).
# echo-vault depends on echo-core, so its build is echo-core's wasm32 build
# too (the architecture invariant); building echo-core on its own as well
# would compile the whole dependency tree a second time (other features).
WASM_CRATES := echo-vault echo-vault-net
# Crates with browser tests (tests/*.rs run by wasm-bindgen-test in headless
# Chromium, inside workers): scripts/wasm-test.sh CRATE.
WASM_TEST_CRATES := echo-vault

.PHONY: help setup start serve bench bench-browser test test-native test-wasm lint fmt-check \
	ts-check wasm wasm-test-hooks web test-web e2e signal

VAULT_URL ?= http://vault.localhost:8600
APP_URL ?= http://app.localhost:8601

help:
	@echo "make start   build the vault (wasm engine, pages) and the demo app, serve both:"
	@echo "             $(APP_URL) (demo app) and $(VAULT_URL)/manage.html (the vault)"
	@echo "make test    unit + property tests, browser tests (headless Chromium), clippy -D warnings,"
	@echo "             rustfmt check, wasm32 build, web build + unit tests, end-to-end tests"
	@echo "make bench   native benchmarks + the browser benchmarks (tables; JSON in target/bench/)"
	@echo "make setup   install the toolchain pieces (apt, rustup components, wasm tools, npm tools)"

setup:
	scripts/setup.sh

# The vault site (shell/dist) and the demo app (demo-app/dist), served by
# echo-signal until Ctrl-C.
start: setup wasm web signal
	@echo
	@echo "  ECHO is up:"
	@echo "    demo app (task board)   $(APP_URL)"
	@echo "    your vault (manage)     $(VAULT_URL)/manage.html"
	@echo "  Ctrl-C stops the server."
	@echo
	target/debug/echo-signal --vault-dir shell/dist --app-dir demo-app/dist

signal:
	cargo build -p echo-signal

bench: setup
	cargo run --release -p echo-bench
	@echo "== signaling (echo-signal: sockets held, memory per socket, messages/s, one node vs two through Redis)"
	cargo build --release -p echo-signal
	cargo run --release -p echo-signal --example bench
	@$(MAKE) --no-print-directory bench-browser

# In headless Chromium: the vault's own figures, the side-by-side
# comparison with automerge-repo and Yjs, and two vaults over WebRTC against
# Yjs + y-webrtc (in a loopback-only network namespace; bench/browser/README.md).
bench-browser: wasm web signal
	node bench/browser/vault.mjs
	node bench/browser/run.mjs
	node bench/browser/webrtc.mjs

# Steps run in order and stop at the first failure.
test: setup
	@$(MAKE) --no-print-directory test-native
	@$(MAKE) --no-print-directory test-wasm
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory fmt-check
	@$(MAKE) --no-print-directory ts-check
	@$(MAKE) --no-print-directory wasm
	@$(MAKE) --no-print-directory web
	@$(MAKE) --no-print-directory test-web
	@$(MAKE) --no-print-directory e2e
	@echo "make test: all steps passed"

# nextest when installed (the project's machines have it), else cargo test.
# nextest does not run doc tests: cargo test --doc first, so that nextest's
# summary is the last test-runner line of the run.
test-native:
	@echo "== tests (native)"
	@if cargo nextest --version >/dev/null 2>&1; then \
	  set -x; cargo test --workspace --doc; cargo nextest run --workspace; \
	else \
	  echo "cargo-nextest not found: using cargo test"; set -x; cargo test --workspace; \
	fi

# The browser tests: wasm32 builds of each crate's tests/*.rs, run by the
# pinned wasm-bindgen-test-runner in headless Chromium (one browser per test
# binary). Natively those crates compile without their browser code.
test-wasm:
	@echo "== tests (wasm32, headless Chromium)"
	@for crate in $(WASM_TEST_CRATES); do scripts/wasm-test.sh "$$crate"; done

lint:
	@echo "== clippy"
	cargo clippy --workspace --all-targets -- -D warnings

fmt-check:
	@echo "== rustfmt"
	cargo fmt --all --check

# The generated RPC types must type-check (tsc from scripts/npm-tools, ~3 s).
# Installs the npm tools the way scripts/setup.sh does when they are missing.
NPM_TOOLS := $(CURDIR)/.tools/npm
ts-check:
	@echo "== tsc --strict client/src/protocol.ts"
	@if ! cmp -s scripts/npm-tools/package-lock.json "$(NPM_TOOLS)/package-lock.json" || \
	    [ ! -x "$(NPM_TOOLS)/node_modules/.bin/tsc" ]; then \
	  mkdir -p "$(NPM_TOOLS)" && cp scripts/npm-tools/package.json scripts/npm-tools/package-lock.json "$(NPM_TOOLS)/" && \
	  (cd "$(NPM_TOOLS)" && npm ci --no-audit --no-fund </dev/null); \
	fi
	"$(NPM_TOOLS)/node_modules/.bin/tsc" --noEmit --strict --target es2022 client/src/protocol.ts

wasm:
	@echo "== wasm32 release build"
	@for crate in $(WASM_CRATES); do scripts/wasm-build.sh "$$crate"; done

# The vault site and the demo app (tsc --strict, then esbuild); needs the
# engine from `make wasm`.
web:
	@echo "== web build (shell/, worker/, demo-app/)"
	ECHO_VAULT_URL=$(VAULT_URL) ECHO_APP_URL=$(APP_URL) node scripts/web-build.mjs

# Unit tests of the TypeScript packages (node's test runner).
test-web:
	@echo "== web unit tests (client/, demo-app/)"
	cd client && npm test --silent
	cd demo-app && npm test --silent

# Playwright (playwright-core + Debian's Chromium) across real sites; e2e/15 also
# Firefox ESR (puppeteer-core, WebDriver BiDi) and WebKitGTK (WebKitWebDriver).
e2e: signal wasm-test-hooks
	@echo "== end-to-end tests (e2e/: Chromium, Firefox ESR, WebKitGTK)"
	node e2e/run.mjs

# The engine with its test hook (vault-wasm feature `test-hooks`), for the
# two-vaults e2e test only; its own target dir, so that it does not rebuild
# the release one.
wasm-test-hooks:
	ECHO_WASM_TARGET_DIR=$(CURDIR)/target/wasm-test-hooks ECHO_PKG_DIR=$(CURDIR)/pkg/echo-vault-test-hooks \
	  scripts/wasm-build.sh echo-vault --features test-hooks
