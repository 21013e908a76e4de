#!/usr/bin/env bash
# Retention and backups on a ~1 GB history: writes FILES files VERSIONS times
# each through a real mount (every version fresh random content of SIZE_KB KiB,
# so nothing deduplicates), plus a log appended to APPENDS times. Then, while
# an agent keeps appending in the mount: `memfsctl backup` (time; the copy is
# restored and checked with fsck and audit verify), and `memfsctl gc` with
# `keep_versions = KEEP` (database size before and after, time, the slowest
# append meanwhile, fsck and audit verify afterwards).
#
# Defaults: 64 files x 64 versions x 256 KiB = 1 GiB. QUICK=1: 64 MiB.
# Run as root (FUSE). Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=${FILES:-64}
VERSIONS=${VERSIONS:-64}
SIZE_KB=${SIZE_KB:-256}
APPENDS=${APPENDS:-2000}
KEEP=${KEEP:-4}
if [ -n "${QUICK:-}" ]; then FILES=16; VERSIONS=16; APPENDS=200; fi

scripts/setup.sh
cargo build --release -q
BIN=$PWD/target/release
WORK=$(mktemp -d /var/tmp/memfs-bench-retention.XXXXXX)
MNT=$WORK/mnt
mkdir -p "$MNT"
DAEMON=
cleanup() {
  [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
  "$BIN/memfs" umount "$MNT" 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/memfs.toml" <<EOF
database = "$WORK/memfs.db"
[daemon]
lease_ttl_secs = 1
gc_interval_secs = 0
[[stores]]
name = "kb"
[stores.retention]
keep_versions = $KEEP
EOF
export MEMFS_CONFIG=$WORK/memfs.toml
"$BIN/memfs" init >/dev/null 2>&1
"$BIN/memfs" mount "$MNT" --agent bench --session s1 >"$WORK/daemon.log" 2>&1 &
DAEMON=$!
for _ in $(seq 200); do grep -q " $MNT " /proc/mounts && break; sleep 0.05; done

checkpoint() { # copies the WAL into the database file and truncates it,
  # retrying while the daemon's short read snapshots are in the way
  python3 - "$WORK/memfs.db" <<'EOF'
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=10)
for _ in range(200):
    busy, log, done = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy == 0 and log <= 0:
        break
    time.sleep(0.05)
EOF
}
size() { # bytes of the database file (after a checkpoint) and its WAL
  checkpoint
  local wal=0
  [ -f "$WORK/memfs.db-wal" ] && wal=$(stat -c %s "$WORK/memfs.db-wal")
  echo $(( $(stat -c %s "$WORK/memfs.db") + wal ))
}
mib() { awk -v b="$1" 'BEGIN { printf "%.0f MiB", b / 1048576 }'; }

echo "writing $FILES files x $VERSIONS versions x $SIZE_KB KiB and $APPENDS appends..." >&2
t0=$(date +%s.%N)
python3 - "$MNT/kb" "$FILES" "$VERSIONS" "$SIZE_KB" "$APPENDS" <<'EOF'
import os, sys
root, files, versions, kb, appends = sys.argv[1], *map(int, sys.argv[2:])
for v in range(versions):
    for f in range(files):
        with open(f"{root}/doc{f:03}.bin", "wb") as fh:
            fh.write(os.urandom(kb * 1024))
with open(f"{root}/events.log", "ab") as fh:
    for i in range(appends):
        fh.write(f"event {i} {os.urandom(24).hex()}\n".encode())
        fh.flush()
        os.fsync(fh.fileno())
EOF
t1=$(date +%s.%N)
before=$(size)
echo "history written in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", b-a}') s: database $(mib "$before")" >&2

# An agent appends in the mount while a command runs; its slowest append is
# the longest any writer waited for that command.
start_appender() {
  rm -f "$WORK/stop"
  python3 - "$MNT/kb/during.log" "$WORK/stop" >"$WORK/appends.txt" <<'EOF' &
import os, sys, time
path, stop = sys.argv[1], sys.argv[2]
worst, n = 0.0, 0
while not os.path.exists(stop):
    t = time.monotonic()
    with open(path, "ab") as fh:
        fh.write(b"x\n")
    worst = max(worst, time.monotonic() - t)
    n += 1
print(f"{n} {worst * 1000:.0f}")
EOF
  APPENDER=$!
}
stop_appender() { touch "$WORK/stop"; wait "$APPENDER"; read -r n worst <"$WORK/appends.txt"; }

start_appender
t0=$(date +%s.%N)
"$BIN/memfsctl" backup "$WORK/backup.db" >/dev/null
t1=$(date +%s.%N)
stop_appender
echo "backup under load: $(mib "$(stat -c %s "$WORK/backup.db")") in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s; $n appends meanwhile, slowest ${worst} ms"
"$BIN/memfsctl" --db "$WORK/restored.db" restore "$WORK/backup.db" >/dev/null
"$BIN/memfsctl" --db "$WORK/restored.db" fsck >/dev/null
"$BIN/memfsctl" --db "$WORK/restored.db" audit verify >/dev/null
echo "restored copy: fsck ok, audit verify ok"
rm -f "$WORK/backup.db" "$WORK/restored.db"*

sleep 3.5  # the grace period (3 lease TTLs) must be over
start_appender
t0=$(date +%s.%N)
"$BIN/memfsctl" gc --json >"$WORK/gc.json"
t1=$(date +%s.%N)
stop_appender
after=$(size)
python3 - "$WORK/gc.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["stores"][0]
print(f"gc: {s['removed']} of {s['versions']} versions removed, {s['materialized']} rewritten flat, "
      f"{s['chunks_deleted']} chunks ({s['chunk_bytes_freed'] / 2**20:.0f} MiB) deleted, "
      f"{s['entries_sealed']} audit entries sealed, {r['pages_vacuumed']} pages given back "
      f"(auto_vacuum {r['after']['auto_vacuum']})")
EOF
echo "gc took $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s; $n appends meanwhile, slowest ${worst} ms"
echo "database: $(mib "$before") before, $(mib "$after") after"
"$BIN/memfsctl" fsck >/dev/null && echo "fsck: ok"
"$BIN/memfsctl" audit verify >/dev/null && echo "audit verify: ok"
