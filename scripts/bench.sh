#!/usr/bin/env bash
# `make bench`: builds the release flavour and measures the figures each
# issue names, side by side with its baseline in the same run, then writes
# docs/benchmarks.md.  Never part of the test suite.
#
#   scripts/bench.sh            all figures, default sizes
#   BENCH_ROWS=1000000 scripts/bench.sh   smaller append/query run
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" --bench
"$ROOT/scripts/build.sh" release
ROWS="${BENCH_ROWS:-10000000}"
COMMITS="${BENCH_COMMITS:-10000}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
B="$ROOT/build/bench"
OUT="$WORK/results.txt"
: > "$OUT"

# run NAME CMD...: runs CMD under /usr/bin/time, appends its result line
# plus peak_rss_mb to $OUT and echoes progress to the terminal.
run() {
  local name="$1"; shift
  echo "bench: $name ..." >&2
  local line
  line=$(/usr/bin/time -f "TIME %M" "$@" 2>"$WORK/time.txt")
  local rss
  rss=$(awk '/^TIME/ {printf "%.0f", $2/1024}' "$WORK/time.txt")
  echo "$line peak_rss_mb=$rss" | tee -a "$OUT" >&2
}

val() { # val NAME KEY
  grep "^$1 " "$OUT" | tail -1 | tr ' ' '\n' | awk -F= -v k="$2" '$1==k {print $2}'
}

# Storage layer (issue: Delta Lake tables)
run append-duckdb "$B/delta_bench" append-duckdb "$WORK" "$ROWS"
run append-strata "$B/delta_bench" append-strata "$WORK" "$ROWS"
run append-duckdb "$B/delta_bench" append-duckdb "$WORK" "$ROWS"
run append-strata "$B/delta_bench" append-strata "$WORK" "$ROWS"
run query "$B/delta_bench" query "$WORK"
run snapshot "$B/delta_bench" snapshot "$WORK" "$COMMITS"
run commit "$B/delta_bench" commit "$WORK" 200

# best of the two alternating runs for each side
best() { grep "^$1 " "$OUT" | tr ' ' '\n' | awk -F= '$1=="seconds" {print $2}' | sort -n | head -1; }
d=$(best append-duckdb); s=$(best append-strata)
ratio=$(awk -v d="$d" -v s="$s" 'BEGIN {printf "%.2f", d/s}')

host="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME")"
cat > "$ROOT/docs/benchmarks.md" <<MD
# Benchmarks

Produced by \`make bench\` (scripts/bench.sh) on $(date -u +%Y-%m-%d), $host,
DuckDB 1.4.4, release build. Rows: $ROWS; commits: $COMMITS. Machines here are
noisy: compare the ratios, which are measured side by side in one run.

## Storage layer (Delta tables)

| figure | Strata | baseline | ratio | target |
|---|---|---|---|---|
| append $ROWS rows x 10 columns (rows/s) | $(awk -v s="$s" -v r="$ROWS" 'BEGIN{printf "%.0f", r/s}') ($s s) | DuckDB \`COPY ... TO parquet\`: $(awk -v s="$d" -v r="$ROWS" 'BEGIN{printf "%.0f", r/s}') ($d s) | $ratio | >= 0.9 |
| aggregate query over the table (ms) | view: $(val query view_ms) | \`read_parquet\` of the same files: $(val query read_parquet_ms) | $(val query ratio) | <= 1.1 |
| snapshot load, $COMMITS commits, with checkpoint (ms) | $(val snapshot load_ms_checkpoint) | | | <= 50 |
| snapshot load, $COMMITS commits, no checkpoint (ms) | $(val snapshot load_ms_no_checkpoint) | | | report |
| commit latency, 100-row appends, p50 / p99 (ms) | $(val commit p50_ms) / $(val commit p99_ms) | | | report |
| commit through the txn API, average (ms) | $(val snapshot commit_ms_avg) | | | report |

Peak RSS (MB, whole process including generating the source rows):
append DuckDB $(val append-duckdb peak_rss_mb), append Strata $(val append-strata peak_rss_mb),
query $(val query peak_rss_mb), snapshot $(val snapshot peak_rss_mb), small commits $(val commit peak_rss_mb).

Raw result lines:

\`\`\`
$(cat "$OUT")
\`\`\`
MD
echo "bench: wrote docs/benchmarks.md" >&2
