#!/usr/bin/env bash
# Build and install sdk-python from this checkout into a virtualenv, with the
# pinned test dependencies, and run its tests. Idempotent: re-runs reuse the
# venv and cargo's target dir and only rebuild what changed.
#
#   sdk-python/run-tests.sh [pytest args…]
#
# Environment: PYTHON (default python3), CHANGEWIRE_PY_VENV (default
# sdk-python/.venv), CARGO_TARGET_DIR (respected by the build).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${CHANGEWIRE_PY_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
pip=(--quiet --disable-pip-version-check --no-input)

start=$(date +%s)
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install "${pip[@]}" -r "$here/requirements-test.txt"
# The one command an integrator runs (`pip install ./sdk-python`); --force-reinstall
# so a re-run always tests the current source.
"$venv/bin/python" -m pip install "${pip[@]}" --force-reinstall --no-deps "$here"
echo "sdk-python: installed in $(( $(date +%s) - start ))s"

cd "$here"
exec "$venv/bin/python" -m pytest "$@"
