#!/usr/bin/env bash
# `make dist-test`: the artifacts of `make dist`, installed the way a user
# installs them, on a PATH with no cargo or rustc, each verifying a real
# signed delivery from dist/changewire (SQLite store, a receiver on 127.0.0.1):
#
#   1. a fresh venv: pip install dist/changewire-*.whl (no index), deliver.py;
#   2. a fresh folder: npm install (offline, empty cache) of the main tgz and
#      the platform tgz; deliver.mjs through require() and import(), native;
#   3. a fresh folder: npm install --omit=optional of the main tgz alone;
#      the same delivery through the WebAssembly fallback;
#   4. the binary (stripped, debug link, version) and the .crate files.
#
# Every input must exist (run `make dist` first): a missing one fails.
# Environment: DIST_DIR (default dist), PYTHON (default python3).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/tests/dist"
cd "$root"
dist="$(cd "${DIST_DIR:-dist}" 2>/dev/null && pwd)" || { echo "dist-test: no ${DIST_DIR:-dist}/: run make dist" >&2; exit 1; }
work="$(mktemp -d "${TMPDIR:-/tmp}/changewire-dist-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT

fail() { echo "dist-test: FAIL: $*" >&2; exit 1; }
ms() { date +%s%3N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

version="$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)"
[ -n "$version" ] || fail "no version in Cargo.toml's [workspace.package]"
arch="$(node -p process.arch)"
bin="$dist/changewire"
main_tgz="$dist/changewire-$version.tgz"
platform_tgz="$dist/changewire-linux-$arch-gnu-$version.tgz"
shopt -s nullglob
wheels=("$dist"/changewire-"$version"-*.whl)
shopt -u nullglob
[ ${#wheels[@]} -eq 1 ] || fail "expected one changewire-$version wheel in $dist, found ${#wheels[@]}: run make dist"
wheel="${wheels[0]}"
for f in "$bin" "$dist/changewire.debug" "$main_tgz" "$platform_tgz" \
    "$dist/changewire-core-$version.crate" "$dist/changewire-sdk-$version.crate"; do
    [ -f "$f" ] || fail "missing $f: run make dist"
done

# A PATH without cargo, rustc or rustup: drop ~/.cargo/bin, rustup's
# directories and any directory holding one of them.
python_exe="$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')"
node_exe="$(command -v node)"
clean_path=""
IFS=: read -ra dirs <<< "$PATH"
for d in "${dirs[@]}"; do
    case "$d" in "" | */.cargo/bin* | *rustup*) continue ;; esac
    [ -e "$d/cargo" ] || [ -e "$d/rustc" ] || [ -e "$d/rustup" ] && continue
    clean_path="${clean_path:+$clean_path:}$d"
done
user() { env -u CARGO -u RUSTC -u RUSTUP_HOME -u RUSTUP_TOOLCHAIN -u CARGO_HOME -u CARGO_TARGET_DIR PATH="$clean_path" "$@"; }
user bash -c '! command -v cargo && ! command -v rustc && ! command -v rustup' >/dev/null ||
    fail "cargo or rustc is still on the PATH built without them: $clean_path"
user bash -c 'command -v node && command -v npm' >/dev/null ||
    fail "node/npm are not on the PATH without cargo ($clean_path)"
echo "dist-test: PATH without cargo/rustc: $clean_path"

echo "== dist-test: the binary"
commit="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
[ "$("$bin" --version)" = "changewire $version (commit $commit)" ] || fail "$bin --version: $("$bin" --version), expected commit $commit"
grep -q "^## \[$version\] - [0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\}\$" "$root/CHANGELOG.md" ||
    fail "CHANGELOG.md has no '## [$version] - YYYY-MM-DD' section (Keep a Changelog)"
sections="$(readelf -S --wide "$bin")"
grep -q '\.gnu_debuglink' <<< "$sections" || fail "$bin has no .gnu_debuglink"
! grep -q '\.debug_line\|\.symtab' <<< "$sections" || fail "$bin is not stripped"
# Captured before matching: under pipefail, `readelf | grep -q` fails when grep
# stops reading first and readelf dies of SIGPIPE.
debug_sections="$(readelf -S --wide "$dist/changewire.debug")"
grep -q '\.debug_line' <<< "$debug_sections" || fail "changewire.debug has no line tables"
echo "dist-test: $bin: $(stat -c %s "$bin") bytes, stripped, debug link to changewire.debug"

echo "== dist-test: Python: pip install $(basename "$wheel") in a fresh venv"
case "$(basename "$wheel")" in
    *-cp39-abi3-manylinux*_x86_64.whl | *-cp39-abi3-manylinux*_aarch64.whl) ;;
    *) fail "$(basename "$wheel") is not a cp39-abi3 manylinux wheel" ;;
esac
user "$python_exe" -m venv "$work/venv"
t0=$(ms)
user "$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --no-index "$wheel"
echo "dist-test: pip install of the wheel: $(secs "$t0" "$(ms)")s"
(cd "$work" && user "$work/venv/bin/python" "$here/deliver.py" "$bin" "$version")

npm_flags=(--offline --cache "$work/npm-cache" --no-audit --no-fund --loglevel=error)

echo "== dist-test: Node: npm install $(basename "$main_tgz") $(basename "$platform_tgz") (offline)"
mkdir "$work/native"
t0=$(ms)
(cd "$work/native" && user npm install "${npm_flags[@]}" "$main_tgz" "$platform_tgz")
echo "dist-test: npm install of both packages: $(secs "$t0" "$(ms)")s"
installed="$work/native/node_modules"
[ -f "$installed/changewire-linux-$arch-gnu/changewire.linux-$arch-gnu.node" ] || fail "the platform package has no addon"
[ -z "$(find "$installed/changewire" -name '*.node')" ] || fail "the main package ships a .node file"
user "$node_exe" -e '
  const p = require(process.argv[1])
  if (p.scripts) throw new Error("the published package.json has scripts: " + JSON.stringify(p.scripts))
  const deps = Object.keys(p.dependencies || {})
  if (deps.length) throw new Error("the published package has dependencies: " + deps)
' "$installed/changewire/package.json"
cp "$here/deliver.mjs" "$work/native/"
(cd "$work/native" && user node deliver.mjs "$bin" "$version" native)

echo "== dist-test: Node: npm install --omit=optional $(basename "$main_tgz") (the WebAssembly fallback)"
mkdir "$work/wasm"
t0=$(ms)
(cd "$work/wasm" && user npm install "${npm_flags[@]}" --omit=optional "$main_tgz")
echo "dist-test: npm install of the main package alone: $(secs "$t0" "$(ms)")s"
[ ! -e "$work/wasm/node_modules/changewire-linux-$arch-gnu" ] || fail "--omit=optional installed the platform package"
cp "$here/deliver.mjs" "$work/wasm/"
(cd "$work/wasm" && user node deliver.mjs "$bin" "$version" wasm)

echo "== dist-test: crates"
for crate in changewire-core changewire-sdk; do
    file="$dist/$crate-$version.crate"
    listing="$(tar -tzf "$file")"
    for member in Cargo.toml Cargo.toml.orig README.md src/lib.rs; do
        grep -qx "$crate-$version/$member" <<< "$listing" || fail "$file has no $member"
    done
    ! grep -q '/tests/\|/benches/\|\.py$' <<< "$listing" || fail "$file ships tests or scripts"
done
sdk_manifest="$(tar -xzOf "$dist/changewire-sdk-$version.crate" "changewire-sdk-$version/Cargo.toml")"
grep -A2 '^\[dependencies\.changewire-core\]' <<< "$sdk_manifest" | grep -q "^version = \"$version\"" ||
    fail "changewire-sdk's .crate does not depend on changewire-core $version by version"

echo "dist-test: all artifacts verified"
