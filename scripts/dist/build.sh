#!/usr/bin/env bash
# `make dist`: the release artifacts, built from this checkout into dist/
# (docs/install.md says what each is and how to install it):
#
#   dist/changewire                      the gateway, release build, debug info split off
#   dist/changewire.debug                its debug info (line tables), linked by .gnu_debuglink
#   dist/changewire-<v>-cp39-abi3-*.whl  the Python SDK, one abi3 wheel (maturin)
#   dist/changewire-<v>.tgz              the Node SDK's main package (JS, types, wasm fallback)
#   dist/changewire-linux-x64-gnu-<v>.tgz  its prebuilt native addon
#   dist/changewire-core-<v>.crate, dist/changewire-sdk-<v>.crate   (cargo package)
#
# Environment: CARGO (default cargo), CARGO_TARGET_DIR (respected),
# DIST_DIR (default dist), PYTHON (default python3). Tools it needs beyond the
# rustup toolchain, Python 3 and Node/npm are installed here: maturin (pinned)
# into a venv under target/dist-build, wasm-bindgen-cli by
# sdk-node/scripts/build-wasm.js. binutils (objcopy, strip) must be on PATH.
set -euo pipefail

MATURIN_VERSION=1.16.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
cargo="${CARGO:-cargo}"
python="${PYTHON:-python3}"
dist="$(mkdir -p "${DIST_DIR:-dist}" && cd "${DIST_DIR:-dist}" && pwd)"
build="$root/target/dist-build"
target="$("$cargo" metadata --format-version 1 --no-deps | "$python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
started=$(date +%s)

step() { printf '\n== dist: %s (%ss)\n' "$*" "$(( $(date +%s) - started ))"; }
size() { stat -c %s "$1"; }
human() { numfmt --to=iec-i --suffix=B --format='%.1f' "$1"; }
for tool in objcopy strip npm node; do
    command -v "$tool" >/dev/null || { echo "dist: $tool is not on PATH" >&2; exit 1; }
done

# One version everywhere: the workspace's, which every crate inherits.
version="$("$cargo" metadata --format-version 1 --no-deps | "$python" -c '
import json, sys
print({p["name"]: p["version"] for p in json.load(sys.stdin)["packages"]}["changewire-core"])')"
npm_version="$(node -p 'require("./sdk-node/package.json").version')"
if [ "$version" != "$npm_version" ]; then
    echo "dist: sdk-node/package.json is $npm_version, the crates are $version" >&2
    exit 1
fi

case "$dist" in / | "$root" | "$HOME") echo "dist: refusing to empty $dist" >&2; exit 1 ;; esac
rm -rf "$dist" && mkdir -p "$dist" "$build"
echo "dist: version $version into $dist (cargo target dir $target)"

step "gateway: cargo build --release"
"$cargo" build --release --locked -p changewire-gateway
bin="$target/release/changewire"
# Split debug info: the binary ships without it (and without the symbol table);
# changewire.debug keeps the line tables for gdb/addr2line, found through the
# .gnu_debuglink section (same directory, or /usr/lib/debug/.build-id).
objcopy --only-keep-debug "$bin" "$dist/changewire.debug"
objcopy --strip-all "$bin" "$dist/changewire"
(cd "$dist" && objcopy --add-gnu-debuglink=changewire.debug changewire)
"$dist/changewire" --version
echo "dist: changewire $(human "$(size "$dist/changewire")") stripped ($(human "$(size "$bin")") as built, debug info $(human "$(size "$dist/changewire.debug")"))"

step "Python wheel: maturin $MATURIN_VERSION build --release"
if [ ! -x "$build/venv/bin/maturin" ] || [ "$("$build/venv/bin/maturin" --version)" != "maturin $MATURIN_VERSION" ]; then
    rm -rf "$build/venv"
    "$python" -m venv "$build/venv"
    "$build/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "maturin==$MATURIN_VERSION"
fi
# Without --compatibility maturin audits the extension's glibc symbol versions
# and tags the wheel with the oldest manylinux policy they allow (no zig, no
# Docker: the wheel is built against this machine's glibc).
(cd sdk-python && "$build/venv/bin/maturin" build --release --locked --out "$dist")
wheels=("$dist"/changewire-"$version"-*.whl)
[ ${#wheels[@]} -eq 1 ] && [ -f "${wheels[0]}" ] || { echo "dist: expected one wheel, got: ${wheels[*]}" >&2; exit 1; }
echo "dist: $(basename "${wheels[0]}") $(human "$(size "${wheels[0]}")")"

step "Node: native addon (cargo build --release -p changewire-node)"
CHANGEWIRE_NATIVE_PROFILE=release node sdk-node/scripts/build-native.js
addon="$build/changewire.node"
# --strip-unneeded keeps the dynamic symbols Node loads the addon by.
strip --strip-unneeded -o "$addon" "sdk-node/changewire.linux-$(node -p process.arch)-gnu.node"
echo "dist: native addon $(human "$(size "$addon")") stripped"

step "Node: WebAssembly build (wasm-bindgen)"
node sdk-node/scripts/build-wasm.js

step "Node: npm packages"
node scripts/dist/npm-packages.js "$addon" "$build/npm" "$dist"

step "crates: cargo package (builds each from its .crate)"
"$cargo" package --locked --allow-dirty -p changewire-core -p changewire-sdk
for crate in changewire-core changewire-sdk; do
    cp "$target/package/$crate-$version.crate" "$dist/"
    echo "dist: $crate-$version.crate $(human "$(size "$dist/$crate-$version.crate")"): $(tar -tzf "$dist/$crate-$version.crate" | wc -l) files"
done

step "done"
ls -l "$dist"
