# ECHO — the two commands a person needs: `make start` and `make test`.
# Every target installs what it needs first (scripts/setup.sh, idempotent).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# rustup's cargo lives here; a non-login shell (CI) may not have it on PATH.
export PATH := $(HOME)/.cargo/bin:$(PATH)
export CARGO_TERM_COLOR ?= auto

# Crates that must build for the browser (wasm32-unknown-unknown, release).
WASM_CRATES := echo-core echo-vault
# Crates with browser tests (tests/*.rs run by wasm-bindgen-test in headless
# Chromium, inside workers): scripts/wasm-test.sh CRATE.
WASM_TEST_CRATES := echo-vault

.PHONY: help setup start bench test test-native test-wasm lint fmt-check ts-check wasm

help:
	@echo "make start   run the engine benchmarks (the vault comes with the browser issue)"
	@echo "make test    unit + property tests, browser tests (headless Chromium), clippy -D warnings,"
	@echo "             rustfmt check, wasm32 build"
	@echo "make bench   native benchmarks: prints a table, writes target/bench/native.json"
	@echo "make setup   install the toolchain pieces (apt, rustup components, wasm tools)"

setup:
	scripts/setup.sh

start: setup
	@echo "ECHO's vault runs in the browser and comes with the browser issue; until then,"
	@echo "make start runs the engine's benchmarks on this machine (same as make bench)."
	cargo run --release -p echo-bench

bench: setup
	cargo run --release -p echo-bench

# Steps run in order and stop at the first failure.
test: setup
	@$(MAKE) --no-print-directory test-native
	@$(MAKE) --no-print-directory test-wasm
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory fmt-check
	@$(MAKE) --no-print-directory ts-check
	@$(MAKE) --no-print-directory wasm
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
