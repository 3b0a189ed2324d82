#!/bin/sh
# servers.sh start|seed|change|stop DIR PGPORT MYPORT - the demo's sample
# sources: a throwaway PostgreSQL (portfolio OLTP) and MariaDB (CRM), data
# in DIR, listening on 127.0.0.1 only, no systemd.  Needs root (PostgreSQL
# runs as user postgres through runuser).  User strata/stratapw on both.
set -eu
cmd=$1 dir=$2 pgport=${3:-0} myport=${4:-0}
here=$(cd "$(dirname "$0")" && pwd)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
psql_src() { PGPASSWORD=stratapw "$PGBIN/psql" -h 127.0.0.1 -p "$pgport" -U strata -d src -qAt -v ON_ERROR_STOP=1 "$@"; }
my() { mariadb --no-defaults --socket="$dir/my/sock" -uroot "$@"; }
case "$cmd" in
check)
  [ "$(id -u)" = 0 ] || { echo "not root: the sample PostgreSQL and MariaDB cannot be started" >&2; exit 3; }
  [ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] || { echo "PostgreSQL server binaries not found (scripts/setup.sh installs postgresql)" >&2; exit 3; }
  command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null ||
    { echo "mariadbd not found (scripts/setup.sh installs mariadb-server)" >&2; exit 3; }
  ;;
start)
  mkdir -p "$dir/pg" "$dir/my"
  chmod 755 "$dir"
  chown postgres "$dir/pg"
  runuser -u postgres -- "$PGBIN/initdb" -D "$dir/pg/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/pg/init.log" 2>&1
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $pgport -k $dir/pg -c fsync=off -c full_page_writes=off -c synchronous_commit=off" start >/dev/null
  "$PGBIN/psql" -h 127.0.0.1 -p "$pgport" -U postgres -qAt -v ON_ERROR_STOP=1 \
    -c "CREATE USER strata PASSWORD 'stratapw' SUPERUSER" -c "CREATE DATABASE src OWNER strata" >/dev/null
  sed -i 's/^host.*all.*all.*127.0.0.1\/32.*trust/host all all 127.0.0.1\/32 scram-sha-256/' "$dir/pg/data/pg_hba.conf"
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/pg/data" reload >/dev/null
  mariadb-install-db --no-defaults --datadir="$dir/my/data" --auth-root-authentication-method=socket >"$dir/my/init.log" 2>&1
  (setsid mariadbd --no-defaults --user=root --datadir="$dir/my/data" --socket="$dir/my/sock" \
     --port="$myport" --bind-address=127.0.0.1 --pid-file="$dir/my/pid" --skip-log-bin \
     --innodb-flush-log-at-trx-commit=0 --log-error="$dir/my/err.log" >/dev/null 2>&1 &)
  i=0
  until mariadb-admin --no-defaults --socket="$dir/my/sock" -uroot ping >/dev/null 2>&1; do
    i=$((i+1)); [ $i -gt 300 ] && { echo "mariadb did not start" >&2; cat "$dir/my/err.log" >&2; exit 1; }
    sleep 0.1
  done
  my -e "CREATE USER 'strata'@'127.0.0.1' IDENTIFIED BY 'stratapw';
    GRANT ALL ON *.* TO 'strata'@'127.0.0.1';"
  ;;
seed)
  psql_src -f "$here/seed/portfolio.sql" >/dev/null
  psql_src -c "\\copy core.entities FROM '$here/seed/entities.csv' CSV HEADER" \
           -c "\\copy core.accounts FROM '$here/seed/accounts.csv' CSV HEADER" \
           -c "\\copy core.transactions FROM '$here/seed/transactions.csv' CSV HEADER" >/dev/null
  my <"$here/seed/crm.sql"
  ;;
change)
  psql_src -f "$here/seed/changes_portfolio.sql" >/dev/null
  my <"$here/seed/changes_crm.sql"
  ;;
book)
  psql_src -f "$here/seed/book_portfolio.sql" >/dev/null
  ;;
stop)
  [ -n "$PGBIN" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/pg/data" -m immediate stop >/dev/null 2>&1 || true
  if [ -f "$dir/my/pid" ]; then
    pid=$(cat "$dir/my/pid"); kill -TERM "$pid" 2>/dev/null || true
    i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  fi
  ;;
*) echo "usage: servers.sh check|start|seed|change|book|stop DIR PGPORT MYPORT" >&2; exit 2 ;;
esac
