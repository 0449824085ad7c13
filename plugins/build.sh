#!/bin/sh
# Build every plugin in this workspace (SDK examples and test fixtures) to
# WebAssembly components:
#
#     plugins/build.sh            # -> plugins/target/wasm32-wasip2/release/*.wasm
#     plugins/build.sh -p slack-format
#
# Extra arguments go to `cargo build`. Installs the wasm32-wasip2 target if
# the toolchain lacks it.
set -eu
cd "$(dirname "$0")"
if command -v rustup >/dev/null 2>&1; then
    rustup target add wasm32-wasip2 >/dev/null
fi
cargo build --target wasm32-wasip2 --release "$@"
ls -l target/wasm32-wasip2/release/*.wasm
