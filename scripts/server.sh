#!/usr/bin/env bash
# `make server` / `make server-stop`: the Prefect server a team runs, on Debian's PostgreSQL.
#
#   scripts/server.sh start   PostgreSQL up (pg_ctlcluster), role + database created if missing
#                             (pg_trgm in it), `prefect server start` in the background on it,
#                             waits until it answers, prints the PREFECT_API_URL to export (and,
#                             with an auth string, the PREFECT_API_AUTH_STRING line reading its file)
#   scripts/server.sh stop    stops the Prefect server, then PostgreSQL if `start` started it
#   scripts/server.sh pg      only PostgreSQL up + role/database (the tests use this)
#
# Settings (environment): PORT (4200), HOST (127.0.0.1; 0.0.0.0 to serve other machines),
# AUTH_STRING (the server's basic auth "user:password"; required beyond loopback: generated into
# STATE/auth_string when not given), PG_DB / PG_USER (prefect), PG_PASSWORD (generated into
# STATE/pg_password when not given; the old default `prefect` is refused), PG_HOST (127.0.0.1),
# PG_PORT (the cluster's), PREFECT (the prefect command), STATE (.server: pid, log, PREFECT_HOME,
# the two secrets, mode 0600). No secret is printed: the lines to export read them from their files.
set -euo pipefail

PORT=${PORT:-4200}
HOST=${HOST:-127.0.0.1}
PG_DB=${PG_DB:-prefect}
PG_USER=${PG_USER:-prefect}
PG_HOST=${PG_HOST:-127.0.0.1}
PREFECT=${PREFECT:-.venv/bin/prefect}
STATE=${STATE:-.server}
mkdir -p "$STATE" && chmod 700 "$STATE" && STATE=$(cd "$STATE" && pwd)  # absolute: the lines it prints work anywhere
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

die() { echo "server: $*" >&2; exit 1; }

secret() {  # secret NAME GIVEN: GIVEN, else the one kept in STATE/NAME, else a new one kept there
  local file="$STATE/$1"
  if [ -n "$2" ]; then
    (umask 077; printf '%s' "$2" >"$file")
  elif [ ! -s "$file" ]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n=' >"$file")
  fi
  cat "$file"
}

loopback() { case "$1" in 127.*|localhost|::1) return 0 ;; *) return 1 ;; esac; }

cluster() {  # "version name port status" of the first cluster
  command -v pg_lsclusters >/dev/null || die "PostgreSQL is not installed (make system installs Debian's postgresql)"
  pg_lsclusters -h | head -1 | awk '{print $1, $2, $3, $4}'
}

as_postgres() { $SUDO runuser -u postgres -- "$@"; }

pg_up() {
  [ "${PG_PASSWORD:-}" != prefect ] || die "PG_PASSWORD: the old default 'prefect' is refused; leave it unset (a generated one is kept in $STATE/pg_password) or choose another"
  case "${PG_PASSWORD:-}" in *[\'\\]*) die "PG_PASSWORD: no quote or backslash in it, please" ;; esac
  read -r ver name pgport status <<<"$(cluster)"
  [ -n "${ver:-}" ] || die "no PostgreSQL cluster (pg_createcluster 15 main)"
  if [ "$status" != online ]; then
    $SUDO pg_ctlcluster "$ver" "$name" start
    touch "$STATE/pg_started"  # `stop` stops only a cluster that this script started
  fi
  PG_PORT=${PG_PORT:-$pgport}
  PG_PASSWORD=$(secret pg_password "${PG_PASSWORD:-}")
  for _ in $(seq 1 60); do
    as_postgres pg_isready -q -p "$PG_PORT" && break
    sleep 0.5
  done
  as_postgres pg_isready -q -p "$PG_PORT" || die "PostgreSQL $ver/$name does not answer on port $PG_PORT"
  # role and database, created when missing (the password is (re)set so the URL below works; psql reads
  # it from its input, so it is on no command line, and the statement is not logged)
  as_postgres psql -q -p "$PG_PORT" -v ON_ERROR_STOP=1 -d postgres <<SQL
\\set pw '$PG_PASSWORD'
SELECT format('CREATE ROLE %I LOGIN', '$PG_USER') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER')\gexec
SET log_statement = 'none';
ALTER ROLE "$PG_USER" LOGIN PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', '$PG_DB', '$PG_USER') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$PG_DB')\gexec
SQL
  as_postgres psql -q -p "$PG_PORT" -v ON_ERROR_STOP=1 -d "$PG_DB" -c "CREATE EXTENSION IF NOT EXISTS pg_trgm"
  DB_URL="postgresql+asyncpg://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/$PG_DB"
}

start() {
  # beyond loopback the API answers only clients that send the auth string (Prefect's basic auth)
  local auth="${AUTH_STRING:-}"
  if ! loopback "$HOST" || [ -n "$auth" ] || [ -s "$STATE/auth_string" ]; then
    [ -z "$auth" ] || [[ "$auth" == ?*:?* ]] || die "AUTH_STRING: must be user:password"
    [ -n "$auth" ] || [ -s "$STATE/auth_string" ] || auth="srgan:$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n=')"
    auth=$(secret auth_string "$auth")
  fi
  pg_up
  mkdir -p "$STATE/home"
  if [ -f "$STATE/prefect.pid" ] && kill -0 "$(cat "$STATE/prefect.pid")" 2>/dev/null; then
    echo "server: already running (pid $(cat "$STATE/prefect.pid"))"
  else
    # its own session (setsid), so that `stop` ends the server and its children as one group; the
    # secrets go in through the environment, never on a command line
    PREFECT_HOME="$STATE/home" \
    PREFECT_SERVER_DATABASE_CONNECTION_URL="$DB_URL" \
    PREFECT_SERVER_API_AUTH_STRING="$auth" \
    PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE=prefect.server.concurrency.lease_storage.filesystem \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
      setsid nohup "$PREFECT" server start --host "$HOST" --port "$PORT" >"$STATE/prefect.log" 2>&1 &
    echo $! >"$STATE/prefect.pid"
  fi
  local probe=127.0.0.1 shown
  loopback "$HOST" || [ "$HOST" = 0.0.0.0 ] || probe=$HOST
  shown=$probe
  [ "$HOST" != 0.0.0.0 ] || shown=$(hostname -f 2>/dev/null || hostname)
  local url="http://$probe:$PORT/api"
  for _ in $(seq 1 240); do
    if curl -fsS "$url/health" >/dev/null 2>&1; then
      echo "Prefect server on PostgreSQL ($PG_DB at $PG_HOST:$PG_PORT), log $STATE/prefect.log"
      echo "export PREFECT_API_URL=http://$shown:$PORT/api"
      if [ -n "$auth" ]; then
        # the string itself stays in its file (0600): copy that file to the worker machines
        curl -s -o /dev/null -w '%{http_code}' -X POST "$url/flow_runs/count" | grep -qx 401 \
          || die "the server answered an API call without the auth string"
        echo "export PREFECT_API_AUTH_STRING=\"\$(cat $STATE/auth_string)\""
      fi
      return 0
    fi
    kill -0 "$(cat "$STATE/prefect.pid")" 2>/dev/null || { tail -20 "$STATE/prefect.log" >&2; die "prefect server exited"; }
    sleep 0.5
  done
  tail -20 "$STATE/prefect.log" >&2
  die "prefect server did not answer on $url within 120 s"
}

stop() {
  if [ -f "$STATE/prefect.pid" ]; then
    pid=$(cat "$STATE/prefect.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null || true
      echo "server: prefect server (pid $pid) stopped"
    fi
    rm -f "$STATE/prefect.pid"
  fi
  read -r ver name _ status <<<"$(cluster)"
  if [ "${status:-}" = online ] && [ -f "$STATE/pg_started" ]; then
    $SUDO pg_ctlcluster "$ver" "$name" stop && echo "server: PostgreSQL $ver/$name stopped"
  elif [ "${status:-}" = online ]; then
    echo "server: PostgreSQL $ver/$name left running (it was running before \`make server\`; others may use it)"
  fi
  rm -f "$STATE/pg_started"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  pg) pg_up; echo "$DB_URL" ;;
  *) die "usage: scripts/server.sh start|stop|pg" ;;
esac
