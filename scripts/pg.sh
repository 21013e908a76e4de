#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and for trying memfs out, run as
# the `postgres` user (the server refuses root), no systemd:
#
#   scripts/pg.sh start [DIR]   initdb + start on a Unix socket in DIR (default
#                               /tmp/memfs-pg), also on TCP 127.0.0.1:PORT when
#                               PG_TCP=1 (PORT: $PG_PORT, default 54329);
#                               prints the environment to use (as `env` does)
#   scripts/pg.sh env [DIR]     MEMFS_TEST_PG=... (tests) and MEMFS_DB=... (a
#                               database "memfs" for a try-out), for eval
#   scripts/pg.sh stop [DIR]    stops the server and removes DIR
#
# Installs Debian's postgresql package if missing, after telling
# postgresql-common not to create (and start) its default cluster.
set -euo pipefail
cmd=${1:-}
dir=${2:-${MEMFS_PG_DIR:-/tmp/memfs-pg}}
port=${PG_PORT:-54329}

pgbin() {
  local b
  for b in /usr/lib/postgresql/*/bin; do
    [ -x "$b/initdb" ] && { echo "$b"; return; }
  done
  return 1
}

install_pg() {
  if pgbin >/dev/null 2>&1; then return; fi
  if [ "$(id -u)" -ne 0 ]; then echo "pg.sh: need root to install postgresql" >&2; exit 1; fi
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster *= *false' /etc/postgresql-common/createcluster.conf \
    || printf 'create_main_cluster = false\n' >>/etc/postgresql-common/createcluster.conf
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
}

as_pg() { runuser -u postgres -- "$@"; }

print_env() {
  echo "export MEMFS_TEST_PG='host=$dir port=$port user=postgres dbname=postgres'"
  echo "export MEMFS_DB='postgres://postgres@/memfs?host=$dir&port=$port'"
}

case "$cmd" in
  start)
    install_pg
    bin=$(pgbin)
    if [ -f "$dir/data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      print_env; exit 0
    fi
    rm -rf "$dir"; mkdir -p "$dir"; chown postgres:postgres "$dir"; chmod 700 "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    listen="''"
    [ "${PG_TCP:-0}" = 1 ] && listen="'*'"
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = $listen
port = $port
unix_socket_directories = '$dir'
fsync = off
full_page_writes = off
max_connections = 400
shared_buffers = 128MB
CONF
    if [ "${PG_TCP:-0}" = 1 ]; then
      echo "host all all 0.0.0.0/0 trust" >>"$dir/data/pg_hba.conf"
    fi
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
    as_pg "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -qAtc 'CREATE DATABASE memfs' >/dev/null
    print_env
    ;;
  env)
    print_env
    ;;
  stop)
    bin=$(pgbin)
    if [ -d "$dir/data" ]; then
      as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|env|stop [DIR]" >&2; exit 2
    ;;
esac
