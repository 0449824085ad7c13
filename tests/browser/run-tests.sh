#!/usr/bin/env bash
# The console's browser tests: Debian's Chromium (installed here when it is
# missing: browsers cannot be downloaded at run time), playwright-core from
# package-lock.json, the gateway's debug build. Fails, never skips, when
# something is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium (for the console's browser tests)"
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi

(cd "$repo" && cargo build -q -p changewire-gateway)
# The plugin the console attaches and dry-runs (built once; quick after that).
bash "$repo/plugins/build.sh" -p redact-fields >/dev/null
cd "$here"
npm ci --no-audit --no-fund --loglevel=error
node --test --test-concurrency=1 console.test.mjs
