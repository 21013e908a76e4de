#!/usr/bin/env bash
# The HTTP API's throughput and p50/p99 latency, with the same reads and
# writes through a mount for comparison, in one run (release build, database
# on tmpfs, server and mount on one database):
#   API retrieve (view=full) / mount cat; API create / mount create;
#   API update with a precondition / mount overwrite; API list page of a
#   1,000-memory store / mount ls; at 1, 8 and 32 concurrent clients.
#
#   SECS=3 CLIENTS=1,8,32 scripts/bench_api.sh
# Goals (for the benchmark, not tests): >= 5,000 retrieves/s and >= 1,500
# updates/s on 2 cores, p99 under 20 ms at 32 clients, a list page under 20 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-3}
CLIENTS=${CLIENTS:-1,8,32}
scripts/setup.sh
cargo build --release --bins --example bench_api -q
bin=$PWD/target/release
work=$(mktemp -d /tmp/memfs-bench-api.XXXXXX)
serve_pid= mount_pid=
cleanup() {
  set +e
  [ -n "$serve_pid" ] && kill -TERM "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  [ -n "$mount_pid" ] && kill -TERM "$mount_pid" 2>/dev/null && wait "$mount_pid" 2>/dev/null
  mountpoint -q "$work/mnt" && umount -l "$work/mnt"
  mountpoint -q "$work/fs" && umount -l "$work/fs"
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/fs" "$work/mnt"
mount -t tmpfs -o size=4g tmpfs "$work/fs"
cat > "$work/memfs.toml" <<TOML
database = "$work/fs/memfs.db"
[server]
threads = 2
[[stores]]
name = "bench"
TOML
export MEMFS_CONFIG=$work/memfs.toml
"$bin/memfs" init 2>/dev/null
key=$("$bin/memfsctl" apikey create bench --role admin)
store=$("$bin/memfsctl" --json store show bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_id"])')
"$bin/memfs" serve --listen 127.0.0.1:0 2>"$work/serve.log" &
serve_pid=$!
"$bin/memfs" mount "$work/mnt" --agent bench --session bench --store bench 2>"$work/mount.log" &
mount_pid=$!
url=
for _ in $(seq 200); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.log" | head -1 || true)
  [ -n "$url" ] && mountpoint -q "$work/mnt" && break
  sleep 0.05
done
[ -n "$url" ] || { cat "$work/serve.log"; exit 1; }
mountpoint -q "$work/mnt" || { cat "$work/mount.log"; exit 1; }
echo "memfs API benchmark: $(nproc) cores, ${SECS}s per cell, database on tmpfs"
"$bin/examples/bench_api" "$url" "$key" "$store" "$work/mnt/bench" "$SECS" "$CLIENTS"
