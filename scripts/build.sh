#!/usr/bin/env bash
# Configures and builds one flavour:
#   release  build/       gcc, -O2: the `strata` binary and benchmarks
#   asan     build-asan/  clang, ASan+UBSan, unit tests and libFuzzer targets
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
flavour="${1:-release}"
jobs="${JOBS:-$(nproc)}"
case "$flavour" in
  release) dir=build;      args=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc) ;;
  asan)    dir=build-asan; args=(-DCMAKE_BUILD_TYPE=Debug -DST_SANITIZE=ON -DST_FUZZ=ON -DCMAKE_C_COMPILER=clang) ;;
  *) echo "build.sh: unknown flavour '$flavour' (release, asan)" >&2; exit 2 ;;
esac
# re-run configure every time: sources are globbed, and it takes a second
cmake -S "$ROOT" -B "$ROOT/$dir" "${args[@]}" >/dev/null
cmake --build "$ROOT/$dir" -j "$jobs" -- --no-print-directory -s
