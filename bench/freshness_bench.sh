#!/usr/bin/env bash
# freshness_bench.sh - freshness of bronze under a steady load: `strata serve`
# (collector + loader thread, default loader settings) receives a steady
# EVENTS_PER_S from evload_bench on loopback; this script polls bronze every
# POLL seconds and notes when each micro-batch first became queryable.  An
# event's freshness is (first poll that saw its batch) - received_at, i.e.
# from the server taking the POST to a query seeing the row; the poll period
# adds at most POLL seconds.
#
#   bench/freshness_bench.sh [EVENTS_PER_S] [SECONDS]     (defaults 5000 30)
#   env: STRATA_BIN (build/strata), EVLOAD (build/bench/evload_bench), POLL (0.5)
#
# Prints one line: loader-freshness rate=... events=... p50_s=... p95_s=... max_s=...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RATE="${1:-5000}"
SECS="${2:-30}"
POLL="${POLL:-0.5}"
BIN="${STRATA_BIN:-$ROOT/build/strata}"
EVLOAD="${EVLOAD:-$ROOT/build/bench/evload_bench}"
for f in "$BIN" "$EVLOAD"; do
  [ -x "$f" ] || { echo "freshness_bench: $f is not built" >&2; exit 1; }
done
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strata-fresh-XXXXXX")"
SERVE_PID=""
cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/strata.yml" <<'EOF'
name: freshness
collector:
  listen: 127.0.0.1:0
  event_log: {dir: ./eventlog, min_free_bytes: 0}
  sources:
    backend: {key_env: FRESH_KEY, families: [backend_events]}
EOF
export FRESH_KEY="fresh-bench-key"
export STRATA_MASTER_KEY="$(printf '%064d' 7)"

"$BIN" serve --config "$WORK/strata.yml" > "$WORK/serve.out" 2> "$WORK/serve.err" &
SERVE_PID=$!
PORT=""
for _ in $(seq 100); do
  PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$WORK/serve.out" | head -1)
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { echo "freshness_bench: strata serve did not start:" >&2; cat "$WORK/serve.err" >&2; exit 1; }

LAKE="$WORK/lake"
"$EVLOAD" "$PORT" "$FRESH_KEY" "$RATE" "$SECS" 10 16 > "$WORK/evload.out" &
EV_PID=$!
echo "batch,seen_us" > "$WORK/seen.csv"
declare -A SEEN=()
expected=$((RATE * SECS))
deadline=$(( $(date +%s) + SECS + 60 ))
loaded=0
while :; do
  if [ -d "$LAKE/bronze/backend_events/_delta_log" ]; then
    # count first: a batch committed between the two queries is then seen too
    loaded=$("$BIN" sql --lake "$LAKE" --format csv \
               "SELECT count(*) AS n FROM bronze.backend_events" 2>/dev/null | tail -1 || echo 0)
    batches=$("$BIN" sql --lake "$LAKE" --format csv \
               "SELECT _batch_id, count(*) FROM bronze.backend_events GROUP BY 1" 2>/dev/null || true)
    # stamped when the answer is in hand: a batch is never credited early
    now_us=$(date +%s%6N)
    while IFS=, read -r b n; do
      [ -z "$b" ] || [ "$b" = "_batch_id" ] && continue
      if [ -z "${SEEN[$b]:-}" ]; then
        SEEN[$b]=1
        echo "$b,$now_us" >> "$WORK/seen.csv"
      fi
    done <<< "$batches"
  fi
  if ! kill -0 "$EV_PID" 2>/dev/null; then
    # every event the collector acknowledged is in bronze: done
    posted=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' "$WORK/evload.out")
    [ "${loaded:-0}" -ge "${posted:-$expected}" ] && break
  fi
  [ "$(date +%s)" -ge "$deadline" ] && break
  sleep "$POLL"
done
wait "$EV_PID" || echo "freshness_bench: evload_bench reported failed posts" >&2
cat "$WORK/evload.out" >&2

"$BIN" sql --lake "$LAKE" --format csv "
  WITH s AS (SELECT * FROM read_csv('$WORK/seen.csv', header = true, columns = {'batch': 'VARCHAR', 'seen_us': 'BIGINT'})),
  f AS (SELECT (s.seen_us - epoch_us(b.received_at)) / 1e6 AS fresh
        FROM bronze.backend_events b JOIN s ON s.batch = b._batch_id)
  SELECT count(*) AS n, quantile_cont(fresh, 0.5) AS p50, quantile_cont(fresh, 0.95) AS p95,
         max(fresh) AS mx FROM f" | tail -1 | {
  IFS=, read -r n p50 p95 mx
  printf 'loader-freshness rate=%s seconds=%s posted=%s events=%s p50_s=%.2f p95_s=%.2f max_s=%.2f poll_s=%s\n' \
    "$RATE" "$SECS" "$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' "$WORK/evload.out")" "$n" "$p50" "$p95" "$mx" "$POLL"
}
