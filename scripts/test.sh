#!/usr/bin/env bash
# Runs every test: core tests on an in-memory database, real FUSE mounts
# (needs root and /dev/fuse), then the Python suites that drive a real
# `memfs serve` and real mounts with the official clients. Installs missing
# system packages and the pinned Python clients first.
#
# Then the same on PostgreSQL: a throwaway cluster (scripts/pg.sh, stopped
# on exit) and MEMFS_TEST_PG, which gives every core test and every
# real-mount test its own database: all core tests, and the real-mount
# suites below (PG_SUITES; the long randomized checkers agents/torture, the
# SQLite-only backup suite and the systemd/fstab service suite stay on
# SQLite). tests/multihost.rs runs its own clusters. PG=0 skips this half.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo test --all-targets "$@"
venv=$(scripts/pyenv.sh)
cargo build --bins
MEMFS_BIN_DIR="$PWD/target/debug" "$venv/bin/pytest" -q -p no:cacheprovider tests/python

if [ "${PG:-1}" = 1 ]; then
  pgdir=$(mktemp -d /tmp/memfs-pgtest.XXXXXX); chmod 755 "$pgdir"
  trap 'scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true' EXIT
  PG_PORT=${PG_PORT:-54331} scripts/pg.sh start "$pgdir" >/dev/null
  export MEMFS_TEST_PG="host=$pgdir port=${PG_PORT:-54331} user=postgres dbname=postgres"
  suites=${PG_SUITES:-"mount concurrency crash drafts dreams encryption guards history interchange metrics migrate multihost operator policies purge reliability retention"}
  args=(--lib)
  for s in $suites; do args+=(--test "$s"); done
  echo "test.sh: the suites again on PostgreSQL (${suites// /, })" >&2
  cargo test "${args[@]}" "$@"
fi
