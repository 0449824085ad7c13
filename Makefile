# changewire — one entry point for every language. `make help` lists targets.
#
# CARGO_TARGET_DIR is respected everywhere (set it outside the checkout to
# share builds between clones).

SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: help test setup fmt fmt-check lint clippy module-graph rust vectors py node plugins e2e browser quickstart bench bench-core bench-plugins bench-delivery bench-scaling bench-console schema dist dist-test

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

test: setup lint rust vectors plugins py node dist-test e2e browser ## everything CI runs (fmt, clippy, all tests)
	@echo "all tests passed"

setup: ## toolchain targets the build needs (idempotent)
	rustup target add wasm32-wasip2 wasm32-unknown-unknown >/dev/null

fmt: ## format Rust (workspace and plugins)
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path plugins/Cargo.toml --all

fmt-check: ## fail if anything is not formatted
	$(CARGO) fmt --all --check
	$(CARGO) fmt --manifest-path plugins/Cargo.toml --all --check

clippy: ## clippy -D warnings on the workspace and the plugins
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings
	$(CARGO) clippy --manifest-path plugins/Cargo.toml --workspace --all-targets -- -D warnings

module-graph: ## no import circle inside gateway/src, no file over 500 lines without a reason
	python3 scripts/module_graph.py --check

lint: fmt-check clippy module-graph ## fmt-check + clippy + the module graph

rust: ## Rust tests: core, gateway (SQLite and PostgreSQL), SDK, plugins host
	$(CARGO) test --workspace --all-features --exclude changewire-e2e
	$(CARGO) test --manifest-path plugins/Cargo.toml --workspace

vectors: ## the committed vectors and tables are what their generators write
	python3 tests/vectors/generate.py --check
	python3 core/scripts/gen_printable_table.py --check

plugins: setup ## build every plugin to wasm32-wasip2 (plugins/target/…/*.wasm)
	plugins/build.sh >/dev/null

py: ## Python SDK: pip install ./sdk-python in a venv, pytest
	bash sdk-python/run-tests.sh -q

node: ## Node SDK: npm install (native addon), wasm build, node --test
	bash sdk-node/run-tests.sh

dist: ## release artifacts in dist/: stripped binary, abi3 wheel, npm packages, .crate files (docs/install.md)
	bash scripts/dist/build.sh

dist-test: dist ## install dist/ as a user does (no cargo on PATH); a real delivery verified by each SDK
	bash tests/dist/run-tests.sh

e2e: ## end to end: the binary, kill -9, PostgreSQL restart, SIGTERM, every SDK on real deliveries
	$(CARGO) build -p changewire-gateway
	CHANGEWIRE_E2E_SDKS=1 $(CARGO) test -p changewire-e2e -- --test-threads=1

browser: ## the web console in Debian's Chromium (Playwright): sign-in, live events, retry, links, viewer; screenshots to docs/console/
	bash tests/browser/run-tests.sh

quickstart: ## see it work: SQLite store, captured demo table, signed deliveries
	$(CARGO) run -p changewire-gateway -- quickstart

schema: ## regenerate gateway/schema.graphql
	$(CARGO) run -q -p changewire-gateway -- schema > gateway/schema.graphql

bench-core: ## sign/verify throughput (criterion)
	$(CARGO) bench -p changewire-core --bench signing

bench-plugins: ## per-call plugin overhead (criterion + p50/p99)
	$(CARGO) bench -p changewire-plugin-host --bench plugin_call

bench-delivery: ## end to end: delivery, fan-out, capture, latency, isolation, trigger overhead, RSS (JSON)
	$(CARGO) build --release -p changewire-gateway
	$(CARGO) bench -p changewire-gateway --bench delivery -- all

bench-scaling: ## how cost grows: fan-out, payload, backlog, a slow receiver, 1 vs 2 processes; CPU and writes per delivery (JSON)
	$(CARGO) build --release -p changewire-gateway
	$(CARGO) bench -p changewire-gateway --bench scaling -- all

bench-console: ## the console: its pages on 1,000,000 events (p50/p95), and delivery throughput with consoles open vs without (JSON)
	$(CARGO) bench -p changewire-gateway --bench console
	$(CARGO) bench -p changewire-gateway --bench console_live

bench: bench-core bench-plugins bench-delivery bench-scaling bench-console ## every benchmark (release builds; see BENCHMARKS.md)
