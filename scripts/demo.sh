#!/usr/bin/env bash
# The main command: installs what is missing, builds, and runs the demo.
# Extra arguments go to `strata demo` (see `build/strata demo --help`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/build.sh" release
cd "$ROOT"
exec build/strata demo "$@"
