#!/bin/sh
# servers.sh start|stop DIR PGPORT MYPORT - throwaway PostgreSQL and MariaDB
# servers for the extraction tests: data in DIR, loopback ports only, no
# systemd.  PostgreSQL runs as user postgres (runuser), MariaDB as root with
# --no-defaults.  A user strata/stratapw exists on both, database "src".
set -eu
cmd=$1 dir=$2 pgport=${3:-0} myport=${4:-0}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
case "$cmd" in
start)
  mkdir -p "$dir/pg" "$dir/my"
  chown postgres "$dir/pg"
  chmod 755 "$dir"
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
  mariadb --no-defaults --socket="$dir/my/sock" -uroot -e "CREATE DATABASE src CHARACTER SET utf8mb4;
    CREATE USER 'strata'@'127.0.0.1' IDENTIFIED BY 'stratapw'; CREATE USER 'strata'@'localhost' IDENTIFIED BY 'stratapw';
    GRANT ALL ON *.* TO 'strata'@'127.0.0.1'; GRANT ALL ON *.* TO 'strata'@'localhost';"
  ;;
stop)
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/pg/data" -m immediate stop >/dev/null 2>&1 || true
  if [ -f "$dir/my/pid" ]; then
    pid=$(cat "$dir/my/pid"); kill -TERM "$pid" 2>/dev/null || true
    i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  fi
  ;;
esac
