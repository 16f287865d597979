#!/bin/sh
# Entrypoint of localhost/mail-pressure/postgres-debian (scripts/build-images.sh): does for
# Debian's PostgreSQL what the official postgres image's entrypoint does with its variables.
#
#   POSTGRES_PASSWORD          superuser password (required unless POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER              superuser name (default postgres)
#   POSTGRES_DB                database created at first start (default: POSTGRES_USER)
#   POSTGRES_INITDB_ARGS       extra initdb arguments, e.g. --data-checksums
#   POSTGRES_INITDB_WALDIR     separate WAL directory
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for non-local connections (default scram-sha-256)
#   PGDATA                     data directory (default /var/lib/postgresql/data)
#
# On first start (no PG_VERSION in PGDATA) it runs initdb, lets every non-local client in with
# the password, creates POSTGRES_DB, runs /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz on a
# server that listens on the socket only, and stops that server. Then it runs PostgreSQL in the
# foreground, listening on all addresses. Arguments that start with "-" are passed to postgres
# (the operator gives `-c name=value ...`). It runs as postgres (uid 70); started as root it
# prepares the directories and drops to that user.
set -eu

if [ "${1#-}" != "$1" ]; then
  set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
  exec "$@"
fi

PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --clear-groups "$0" "$@"
fi

mkdir -p "$PGDATA"
chmod 700 "$PGDATA" 2>/dev/null || :
mkdir -p /var/run/postgresql 2>/dev/null || :
chmod 3777 /var/run/postgresql 2>/dev/null || :

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
    echo "postgres-entrypoint: the database is not initialised and POSTGRES_PASSWORD is not set." >&2
    echo "  Set POSTGRES_PASSWORD to a non-empty password (or POSTGRES_HOST_AUTH_METHOD=trust to" >&2
    echo "  let every client in without one, which is unsafe)." >&2
    exit 1
  fi
  waldir=""
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    waldir="--waldir=$POSTGRES_INITDB_WALDIR"
  fi
  # The password reaches initdb through a pipe, never a file or the command line.
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS and waldir are lists of words
  printf '%s\n' "${POSTGRES_PASSWORD:-}" |
    initdb --username="$POSTGRES_USER" --pwfile=/dev/stdin $waldir ${POSTGRES_INITDB_ARGS:-}
  printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

  # A server on the Unix socket only, for creating the database and running init scripts.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
  psql_run() {
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --no-password "$@"
  }
  if [ "$POSTGRES_DB" != postgres ]; then
    psql_run --dbname postgres --set db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        echo "postgres-entrypoint: running $f"
        # shellcheck disable=SC1090 # the user's init scripts
        if [ -x "$f" ]; then "$f"; else . "$f"; fi
        ;;
      *.sql)
        echo "postgres-entrypoint: running $f"
        psql_run --dbname "$POSTGRES_DB" -f "$f"
        ;;
      *.sql.gz)
        echo "postgres-entrypoint: running $f"
        gunzip -c "$f" | psql_run --dbname "$POSTGRES_DB"
        ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "postgres-entrypoint: initialised $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
fi

exec "$@"
