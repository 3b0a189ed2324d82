#!/usr/bin/env bash
# Installs everything Strata needs to build, test and run on Debian 12.
# Idempotent: when every package and the pinned DuckDB library are present
# it does nothing and returns in well under a second.
#
#   scripts/setup.sh          build + test dependencies
#   scripts/setup.sh --bench  also the benchmark peers (wrk, nginx, hyperfine)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DUCKDB_VERSION="1.4.4"
DUCKDB_BINDINGS="@duckdb/node-bindings-linux-x64@1.4.4-r.4"
DUCKDB_HEADER_PKG="duckdb@${DUCKDB_VERSION}"
DEPS_DIR="$ROOT/third_party/duckdb"

PKGS=(
  build-essential cmake pkg-config git ca-certificates
  clang libclang-rt-14-dev
  libcmocka-dev libjansson-dev libyaml-dev libsqlite3-dev libzstd-dev
  libsodium-dev libxxhash-dev libroaring-dev libcurl4-openssl-dev
  libmicrohttpd-dev librdkafka-dev libpcre2-dev libssl-dev
  libpq-dev postgresql libmariadb-dev mariadb-server mariadb-client
  unixodbc unixodbc-dev odbc-postgresql odbc-mariadb
  procps psmisc sqlite3
)
if [[ "${1:-}" == "--bench" ]]; then
  PKGS+=(wrk nginx-light hyperfine time)
fi

missing=()
# npm is only needed to fetch DuckDB; a machine with another Node.js build
# (whose package already bundles npm) must not get Debian's npm on top.
if ! command -v npm >/dev/null 2>&1; then PKGS+=(nodejs npm); fi
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# DuckDB's C library, pinned, from the npm registry (Debian ships none).
stamp="$DEPS_DIR/.version"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$DUCKDB_VERSION" || ! -f "$DEPS_DIR/libduckdb.so" || ! -f "$DEPS_DIR/duckdb.h" ]]; then
  echo "setup: fetching DuckDB $DUCKDB_VERSION C library"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$tmp" && npm pack "$DUCKDB_BINDINGS" && npm pack "$DUCKDB_HEADER_PKG") >"$tmp/npm.log" 2>&1; then
    echo "setup: npm pack failed; its output:" >&2
    cat "$tmp/npm.log" >&2
    exit 1
  fi
  mkdir -p "$DEPS_DIR"
  tar xzf "$tmp"/duckdb-node-bindings-linux-x64-*.tgz -C "$tmp" package/libduckdb.so
  tar xzf "$tmp"/duckdb-"$DUCKDB_VERSION".tgz -C "$tmp" package/src/duckdb/src/include/duckdb.h
  install -m 0755 "$tmp/package/libduckdb.so" "$DEPS_DIR/libduckdb.so"
  install -m 0644 "$tmp/package/src/duckdb/src/include/duckdb.h" "$DEPS_DIR/duckdb.h"
  echo "$DUCKDB_VERSION" > "$stamp"
fi
