#!/usr/bin/env bash
# Install sdk-node from this checkout (npm install with the committed
# package-lock.json: the pinned devDependencies; the package's install script
# builds the native addon with cargo), build the
# WebAssembly flavour, and run `node --test` against both. Idempotent: re-runs
# reuse cargo's target dir and the wasm-bindgen CLI, so they take seconds.
#
#   sdk-node/run-tests.sh
#
# Environment: CARGO_TARGET_DIR (respected by both builds).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

start=$(date +%s)
# `npm install`, not `npm ci`: npm 11 records only this platform's optional
# packages of @napi-rs/cli's dependencies in the lock, which `npm ci` then
# refuses as "out of sync"; `npm install` installs the locked versions.
npm install --no-audit --no-fund
echo "sdk-node: installed in $(( $(date +%s) - start ))s"
npm test
