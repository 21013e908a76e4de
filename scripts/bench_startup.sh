#!/usr/bin/env bash
# Does mount start-up grow with history? Times `memfs mount` until the store
# answers a stat through the mount ("ready"), and the first fsync'd write after
# it (the first commit is where SQLite checkpoints a WAL), on a database on disk:
#
#   1. fresh: just after `memfs init`;
#   2. history: after OPS fsx-like operations (examples/gen_history.rs, about
#      1 GB of versions for the default 20,000);
#   3. wal: after a daemon was SIGKILLed with WAL_MB MiB of commits in the WAL
#      (a reader held a snapshot meanwhile, so no checkpoint could reset it).
#
# Prints medians (RUNS mounts, WAL_RUNS kills) and the ratios to fresh.
#
#   scripts/bench_startup.sh              # OPS=20000 WAL_MB=1024 RUNS=5 WAL_RUNS=3
#   OPS=2000 WAL_MB=128 RUNS=3 scripts/bench_startup.sh
#
# Needs root and /dev/fuse. Works in a directory under /var/tmp (DIR=... to
# choose; KEEP=1 keeps it, with the daemons' log).
set -euo pipefail
cd "$(dirname "$0")/.."
OPS=${OPS:-20000}
WAL_MB=${WAL_MB:-1024}
RUNS=${RUNS:-5}
WAL_RUNS=${WAL_RUNS:-3}

scripts/setup.sh
cargo build --release --bins --example gen_history -q
bin=$PWD/target/release
gen=$PWD/target/release/examples/gen_history

work=$(mktemp -d "${DIR:-/var/tmp}/memfs-startup.XXXXXX")
pids=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  mountpoint -q "$work/mnt" && umount -l "$work/mnt"
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/mnt"
cat > "$work/memfs.toml" <<TOML
database = "$work/memfs.db"
[[stores]]
name = "kb"
TOML
export MEMFS_CONFIG=$work/memfs.toml
"$bin/memfs" init 2>/dev/null

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Starts a daemon ($daemon); sets $ready_ms to the ms until the store answers.
start() {
  local t0
  t0=$(date +%s%N)
  RUST_LOG=${RUST_LOG:-memfs=info} "$bin/memfs" mount "$work/mnt" --agent bench --session bench 2>>"$work/daemon.log" &
  daemon=$!
  pids+=("$daemon")
  for _ in $(seq 60000); do
    if mountpoint -q "$work/mnt" && stat -t "$work/mnt/kb" >/dev/null 2>&1; then
      ready_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
      return 0
    fi
    kill -0 "$daemon" 2>/dev/null || { cat "$work/daemon.log" >&2; return 1; }
    sleep 0.002
  done
  echo "memfs did not mount within 120 s" >&2
  return 1
}

stop() {
  kill -TERM "$daemon"
  wait "$daemon" || true
}

# Prints the ms of one write + fsync through the mount.
first_fsync() {
  python3 - "$work/mnt/kb/probe-$RANDOM" <<'PY'
import os, sys, time
t = time.monotonic()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"probe\n")
os.fsync(fd)
os.close(fd)
print(round((time.monotonic() - t) * 1000))
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
size_mb() { du -m --apparent-size "$1" 2>/dev/null | cut -f1; }

# Mounts RUNS times (clean unmounts in between); sets $ready and $fsync (medians).
measure() {
  : > "$work/times"
  for _ in $(seq "$RUNS"); do
    start
    echo "$ready_ms $(first_fsync)" >> "$work/times"
    stop
  done
  ready=$(cut -d' ' -f1 "$work/times" | median)
  fsync=$(cut -d' ' -f2 "$work/times" | median)
}

measure
fresh_db=$(size_mb "$work/memfs.db")
fresh_ready=$ready fresh_fsync=$fsync
echo "fresh: db $fresh_db MB; ready $ready ms, first fsync $fsync ms"

t0=$(now_ms)
"$gen" --db "$work/memfs.db" --ops "$OPS" 2>"$work/gen.log"
echo "history: $OPS fsx-like operations generated in $(( ($(now_ms) - t0) / 1000 )) s"
measure
hist_db=$(size_mb "$work/memfs.db")
hist_ready=$ready hist_fsync=$fsync
echo "history: db $hist_db MB; ready $ready ms, first fsync $fsync ms"

# A large WAL: a reader holds a snapshot (so checkpoints cannot reset the WAL)
# while WAL_MB MiB are committed, then the daemon and the reader are SIGKILLed.
# A new file each time: the killed daemon's write lease on the last one lives on
# for a lease TTL (as documented), and a writer would wait for it.
: > "$work/times"
for i in $(seq "$WAL_RUNS"); do
  python3 - "$work/memfs.db" <<'PY' &
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN")
con.execute("SELECT count(*) FROM inodes").fetchone()
time.sleep(3600)
PY
  reader=$!
  pids+=("$reader")
  start
  dd if=/dev/urandom of="$work/mnt/kb/big-$i" bs=1M count="$WAL_MB" conv=fsync status=none ||
    { tail -20 "$work/daemon.log" >&2; exit 1; }
  kill -KILL "$daemon" "$reader"
  wait "$daemon" "$reader" 2>/dev/null || true
  umount -l "$work/mnt"
  wal=$(size_mb "$work/memfs.db-wal")
  start
  echo "$ready_ms $(first_fsync) $wal" >> "$work/times"
  stop
done
wal_mb=$(cut -d' ' -f3 "$work/times" | median)
wal_ready=$(cut -d' ' -f1 "$work/times" | median)
wal_fsync=$(cut -d' ' -f2 "$work/times" | median)
echo "wal: $wal_mb MB WAL left by SIGKILL; ready $wal_ready ms, first fsync $wal_fsync ms"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : a) }'; }
echo
echo "| database | size | ready (ms) | first fsync (ms) | ready / fresh |"
echo "|---|---|---|---|---|"
echo "| fresh | $fresh_db MB | $fresh_ready | $fresh_fsync | 1.00 |"
echo "| $OPS fsx-like ops | $hist_db MB | $hist_ready | $hist_fsync | $(ratio "$hist_ready" "$fresh_ready") |"
echo "| after SIGKILL | + $wal_mb MB WAL | $wal_ready | $wal_fsync | $(ratio "$wal_ready" "$fresh_ready") |"
