# Throwaway PostgreSQL 15 cluster for the test command (sourced by scripts/test.sh).
#
# pg_up DIR   initialises a cluster in DIR owned by the postgres user, starts it on a free port of
#             127.0.0.1 with test-only settings (fsync off), and exports GMP_TEST_PG_URL.
# pg_down DIR stops it (safe to call twice).
#
# initdb and postgres refuse to run as root, hence runuser when we are root.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pg_up() {
  local dir=$1 port
  [ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL 15 not found in $PG_BIN (apt-get install postgresql-15)" >&2; return 1; }
  port=$(free_port)
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; chmod 700 "$dir"; fi
  pg_as_owner "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  # Tests trade durability for speed; benchmarks (PG_DURABLE=1) keep PostgreSQL's durable defaults.
  local settings="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  [ "${PG_DURABLE:-0}" = 1 ] && settings=""
  # PG_EXTRA_SETTINGS adds server settings, e.g. "-c shared_preload_libraries=pg_stat_statements"
  # to see which statements a benchmark spends PostgreSQL's time on.
  settings="$settings ${PG_EXTRA_SETTINGS:-}"
  pg_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/postgres.log" \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 $settings -c max_connections=400 -c shared_buffers=256MB" \
    start >/dev/null || { cat "$dir/postgres.log" >&2; return 1; }
  export GMP_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
  export PG_TEST_DIR=$dir PG_TEST_PORT=$port
  echo "PostgreSQL test cluster on 127.0.0.1:$port ($dir)"
}

pg_down() {
  local dir=$1
  [ -d "$dir/data" ] || return 0
  pg_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
}
