#!/usr/bin/env bash
# The test command: installs what is missing, builds the release binary and
# the sanitizer build, then runs every test (unit, integration, interop with
# ../shared/delta-golden, and short fuzz runs) under ctest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/build.sh" release
"$ROOT/scripts/build.sh" asan
cd "$ROOT/build-asan"
exec ctest --output-on-failure -j "${JOBS:-2}" "$@"
