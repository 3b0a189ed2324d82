#!/usr/bin/env bash
# extract_bench.sh - extraction figures of the batch-ingestion issue, each
# side by side with the source's own export in the same run:
#   extract-pg       PostgreSQL ROWS x 10 mixed columns to bronze vs
#                    psql "\copy (SELECT ...) TO '/dev/null'"
#   extract-mysql    MariaDB, the same, vs mariadb --quick -e "SELECT ..." > /dev/null
#   extract-hashdiff hashdiff over ROWS rows with 1% changed (wall time, bytes written)
# with peak RSS of every process (/usr/bin/time -f %M).  Starts its own
# throwaway servers (tests/extract/servers.sh) in a temp dir.
#
#   bench/extract_bench.sh [ROWS]       default 10000000
#   STRATA_BIN=path/to/strata  (default build/strata, a release build)
#   BENCH_PARALLEL=2 BENCH_CHUNKS=4 BENCH_BATCH=250000  extraction settings
#   BENCH_ONLY="pg mysql hashdiff"      a subset
#   BENCH_BASELINE_BIN=path/to/old/strata  hashdiff: also runs the second
#                    (1% changed) run with this binary on a copy of the lake
#                    taken after the first run, in the same run of the script;
#                    BENCH_REPEAT=N alternates N baseline runs with N runs of
#                    STRATA_BIN (seconds and RSS listed comma-separated)
# Prints one `key=value` line per figure on stdout.  Must run as root.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROWS="${1:-10000000}"
BIN="${STRATA_BIN:-$ROOT/build/strata}"
PAR="${BENCH_PARALLEL:-2}"
CHUNKS="${BENCH_CHUNKS:-4}"
BATCH="${BENCH_BATCH:-250000}"
ONLY="${BENCH_ONLY:-pg mysql hashdiff}"
[ -x "$BIN" ] || { echo "extract_bench: $BIN not built (make strata)" >&2; exit 2; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strata-xbench-XXXXXX")"
PGPORT=$((40000 + $$ % 10000)); MYPORT=$((PGPORT + 1))
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
cleanup() { sh "$ROOT/tests/extract/servers.sh" stop "$WORK/srv" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/srv"; chmod 755 "$WORK"   # the postgres user must reach the data dir
echo "extract_bench: starting servers in $WORK/srv" >&2
sh "$ROOT/tests/extract/servers.sh" start "$WORK/srv" "$PGPORT" "$MYPORT" >&2
export PGPASSWORD=stratapw XPW=stratapw
PSQL=("$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U strata -d src -qAt -v ON_ERROR_STOP=1)
MY=(mariadb --no-defaults -h 127.0.0.1 -P "$MYPORT" -u strata -pstratapw src)

# 10 mixed columns: integers, exact decimal, double, text, timestamp(tz), date, boolean
COLS="id, qty, amount, price, label, code, created, day, flag, ref"
now() { date +%s.%N; }
# timed NAME CMD...: runs CMD under /usr/bin/time; sets SECS and RSS_MB
timed() {
  local t0 t1
  t0=$(now)
  /usr/bin/time -f "%M" -o "$WORK/rss" "$@" > "$WORK/out" 2> "$WORK/err" || {
    echo "extract_bench: $* failed:" >&2; cat "$WORK/err" "$WORK/out" >&2; exit 1; }
  t1=$(now)
  SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
  RSS_MB=$(awk '{v=$1} END {printf "%.0f", v / 1024}' "$WORK/rss")
}
field() { tr ' ' '\n' < "$WORK/out" | awk -F= -v k="$1" '$1==k {print $2}' | head -1; }

project() { # project DIR SOURCE_YML
  mkdir -p "$1"
  printf 'lake: ./lake\nstate: ./state.db\nsources:\n%s' "$2" > "$1/strata.yml"
}

if [[ " $ONLY " == *" pg "* || " $ONLY " == *" hashdiff "* ]]; then
  echo "extract_bench: seeding PostgreSQL with $ROWS rows" >&2
  "${PSQL[@]}" -c "CREATE UNLOGGED TABLE b10(id bigint PRIMARY KEY, qty integer, amount numeric(18,4),
      price double precision, label text, code varchar(16), created timestamptz, day date,
      flag boolean, ref bigint)" \
    -c "INSERT INTO b10 SELECT g, (g % 1000)::int, (g * 7 % 1000003) / 100.0 + 0.0001, g * 0.37,
      'label ' || g || ' ' || md5(g::text), 'C' || (g % 97), timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
      date '2020-01-01' + (g % 2000)::int, g % 3 = 0, g * 31 FROM generate_series(1, $ROWS) g" \
    -c "VACUUM ANALYZE b10"
fi

if [[ " $ONLY " == *" pg "* ]]; then
  BYTES=$("${PSQL[@]}" -c "\\copy (SELECT $COLS FROM b10) TO STDOUT" | wc -c)
  timed "${PSQL[@]}" -c "\\copy (SELECT $COLS FROM b10) TO '/dev/null'"
  base_s=$SECS base_rss=$RSS_MB
  P="$WORK/pg"
  project "$P" "  pg:
    kind: postgres
    host: 127.0.0.1
    port: $PGPORT
    user: strata
    database: src
    password_env: XPW
    parallel: $PAR
    batch_rows: $BATCH
    tables:
      public.b10: {strategy: full, key: [id], chunks: $CHUNKS}
"
  timed "$BIN" extract pg --project "$P"
  s=$SECS
  awk -v r="$ROWS" -v by="$BYTES" -v s="$s" -v b="$base_s" -v rss="$RSS_MB" -v brss="$base_rss" \
      -v w="$(field rows_written)" -v lb="$(du -sb "$P/lake" | cut -f1)" 'BEGIN {
    printf "extract-pg rows=%d rows_written=%d seconds=%.3f rows_per_s=%.0f mb_per_s=%.1f psql_seconds=%.3f psql_rows_per_s=%.0f psql_mb_per_s=%.1f ratio=%.2f target=0.7 text_mb=%.1f bronze_mb=%.1f peak_rss_mb=%s psql_peak_rss_mb=%s\n",
      r, w, s, r / s, by / 1e6 / s, b, r / b, by / 1e6 / b, b / s, by / 1e6, lb / 1e6, rss, brss }'
fi

if [[ " $ONLY " == *" mysql "* ]]; then
  echo "extract_bench: seeding MariaDB with $ROWS rows" >&2
  "${MY[@]}" -e "CREATE TABLE b10(id bigint PRIMARY KEY, qty int, amount decimal(18,4), price double,
      label text, code varchar(16), created timestamp NULL, day date, flag tinyint, ref bigint) ENGINE=InnoDB;
    SET SESSION time_zone = '+00:00';
    INSERT INTO b10 SELECT seq, seq % 1000, (seq * 7 % 1000003) / 100.0 + 0.0001, seq * 0.37,
      concat('label ', seq, ' ', md5(seq)), concat('C', seq % 97), from_unixtime(1704067200 + seq % 300000000),
      date '2020-01-01' + interval (seq % 2000) day, seq % 3 = 0, seq * 31 FROM seq_1_to_$ROWS;"
  BYTES=$("${MY[@]}" --quick -N -B -e "SELECT $COLS FROM b10" | wc -c)
  timed "${MY[@]}" --quick -N -B -e "SELECT $COLS FROM b10"
  base_s=$SECS base_rss=$RSS_MB
  M="$WORK/my"
  project "$M" "  my:
    kind: mysql
    host: 127.0.0.1
    port: $MYPORT
    user: strata
    database: src
    password_env: XPW
    parallel: $PAR
    batch_rows: $BATCH
    tables:
      src.b10: {strategy: full, key: [id], chunks: $CHUNKS}
"
  timed "$BIN" extract my --project "$M"
  s=$SECS
  awk -v r="$ROWS" -v by="$BYTES" -v s="$s" -v b="$base_s" -v rss="$RSS_MB" -v brss="$base_rss" \
      -v w="$(field rows_written)" 'BEGIN {
    printf "extract-mysql rows=%d rows_written=%d seconds=%.3f rows_per_s=%.0f mb_per_s=%.1f mariadb_seconds=%.3f mariadb_rows_per_s=%.0f mariadb_mb_per_s=%.1f ratio=%.2f target=0.7 text_mb=%.1f peak_rss_mb=%s mariadb_peak_rss_mb=%s\n",
      r, w, s, r / s, by / 1e6 / s, b, r / b, by / 1e6 / b, b / s, by / 1e6, rss, brss }'
fi

if [[ " $ONLY " == *" hashdiff "* ]]; then
  H="$WORK/hd"
  project "$H" "  pg:
    kind: postgres
    host: 127.0.0.1
    port: $PGPORT
    user: strata
    database: src
    password_env: XPW
    parallel: $PAR
    batch_rows: $BATCH
    tables:
      public.b10: {strategy: hashdiff, key: [id], chunks: $CHUNKS, target: hd}
"
  timed "$BIN" extract pg --project "$H"
  first_s=$SECS first_rss=$RSS_MB
  # 1% changed: 0.5% updated, 0.25% deleted, 0.25% inserted
  "${PSQL[@]}" -c "UPDATE b10 SET label = 'changed ' || id WHERE id % 200 = 0" \
    -c "DELETE FROM b10 WHERE id % 400 = 1" \
    -c "INSERT INTO b10 SELECT $ROWS + g, 1, 1.5, 1, 'new', 'N', now(), current_date, true, g
        FROM generate_series(1, $ROWS / 400) g" \
    -c "VACUUM ANALYZE b10"   # so autovacuum does not run during one of the timed runs only
  base_fields=""
  if [ -n "${BENCH_BASELINE_BIN:-}" ]; then
    # the same second run by the baseline binary and by this one, each on
    # a fresh copy of the lake and state taken after the first run (the
    # state DB names the hash state file by absolute path), alternating
    # BENCH_REPEAT times; the last run of this binary is the real one below
    b_s="" b_rss="" n_s="" n_rss=""
    for i in $(seq 1 "${BENCH_REPEAT:-1}"); do
      for which in base new; do
        [ "$which" = new ] && [ "$i" = "${BENCH_REPEAT:-1}" ] && break
        bin=$BIN; [ "$which" = base ] && bin=$BENCH_BASELINE_BIN
        cp -a "$H" "$H.copy"
        sqlite3 "$H.copy/state.db" "UPDATE extract_tables SET hash_state = replace(hash_state, '$H/', '$H.copy/')"
        timed "$bin" extract pg --project "$H.copy"
        if [ "$which" = base ]; then b_s="$b_s${b_s:+,}$SECS" b_rss="$b_rss${b_rss:+,}$RSS_MB" b_w=$(field rows_written)
        else n_s="$n_s${n_s:+,}$SECS" n_rss="$n_rss${n_rss:+,}$RSS_MB"; fi
        rm -rf "$H.copy"
      done
    done
    base_fields="baseline_seconds=$b_s baseline_peak_rss_mb=$b_rss baseline_changed_rows_written=$b_w"
    [ -n "$n_s" ] && base_fields="$base_fields earlier_seconds=$n_s earlier_peak_rss_mb=$n_rss"
  fi
  lake_before=$(du -sb "$H/lake" | cut -f1)
  timed "$BIN" extract pg --project "$H"
  lake_after=$(du -sb "$H/lake" | cut -f1)
  awk -v r="$ROWS" -v s="$SECS" -v f="$first_s" -v w="$(field rows_written)" -v by="$(field bytes)" \
      -v d="$((lake_after - lake_before))" -v rss="$RSS_MB" -v frss="$first_rss" -v base="$base_fields" 'BEGIN {
    printf "extract-hashdiff rows=%d changed_rows_written=%d seconds=%.3f first_run_seconds=%.3f change_bytes=%d lake_growth_bytes=%d peak_rss_mb=%s first_run_peak_rss_mb=%s%s%s\n",
      r, w, s, f, by, d, rss, frss, base == "" ? "" : " ", base }'
fi
