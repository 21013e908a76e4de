#!/usr/bin/env bash
# Where a mount's time goes, from its own /metrics: for 1,000 `echo >>` to a
# 1 MiB file and for N new files, the mean of each commit phase
# (memfs_commit_phase_duration_seconds) and of each FUSE request, in µs.
# The database is on tmpfs, so the figures are the daemon's CPU and
# wake-ups, not a disk.
#
#   N=3000 RUNS=3        files per create run, runs (each run a fresh mount)
#   BIN_DIR=DIR          run the binaries in DIR (say, an older build; its
#                        mount must serve the metric, or the phases print as -)
#
# Prints one line per run and workload. Not a test: no thresholds.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-3000}
RUNS=${RUNS:-3}
PORT=${PORT:-9939}

scripts/setup.sh
source scripts/release_bins.sh
helper=$PWD/scripts/bench_helper.py
work=$(mktemp -d /tmp/memfs-phases.XXXXXX)
pid=
cleanup() {
  set +e
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  mountpoint -q "$work/mnt" && umount -l "$work/mnt"
  mountpoint -q "$work/tmpfs" && umount -l "$work/tmpfs"
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/tmpfs" "$work/mnt"
mount -t tmpfs -o size=2g tmpfs "$work/tmpfs"

scrape() { curl -s "127.0.0.1:$PORT/metrics"; }

# Mean µs per commit phase and per FUSE request between two scrapes.
report() {
  awk -v label="$1" '
    FNR == NR { before[$1] = $2; next }
    { d[$1] = $2 - before[$1] }
    END {
      n = split("prepare begin chunks version audit end finish", ph, " ")
      line = sprintf("%-8s commit µs:", label); total = 0; have = 0
      for (i = 1; i <= n; i++) {
        s = "memfs_commit_phase_duration_seconds_sum{phase=\"" ph[i] "\"}"
        c = "memfs_commit_phase_duration_seconds_count{phase=\"" ph[i] "\"}"
        if (d[c] > 0) { v = d[s] / d[c] * 1e6; total += v; have = d[c]; line = line sprintf(" %s %.1f", ph[i], v) }
        else line = line sprintf(" %s -", ph[i])
      }
      print line sprintf(" = %.1f (%d commits)", total, have)
      line = sprintf("%-8s FUSE µs:", label)
      split("lookup create open getattr write flush release", ops, " ")
      for (i = 1; i <= 7; i++) {
        s = "memfs_fuse_request_duration_seconds_sum{op=\"" ops[i] "\"}"
        c = "memfs_fuse_request_duration_seconds_count{op=\"" ops[i] "\"}"
        if (d[c] >= 100) line = line sprintf(" %s %.1f (%d)", ops[i], d[s] / d[c] * 1e6, d[c])
      }
      print line
    }' "$2" "$3"
}

for run in $(seq "$RUNS"); do
  rm -rf "${work:?}/tmpfs/"*
  cat > "$work/memfs.toml" <<TOML
database = "$work/tmpfs/memfs.db"
[daemon]
gc_interval_secs = 0
[[stores]]
name = "bench"
TOML
  export MEMFS_CONFIG=$work/memfs.toml
  "$bin/memfs" init >/dev/null 2>&1
  "$bin/memfs" mount "$work/mnt" --agent bench --session "phases-$run" \
    --metrics "127.0.0.1:$PORT" 2>"$work/memfs.log" &
  pid=$!
  for _ in $(seq 200); do mountpoint -q "$work/mnt" && break; sleep 0.05; done
  mountpoint -q "$work/mnt" || { cat "$work/memfs.log"; exit 1; }
  d=$work/mnt/bench/w
  mkdir -p "$d"
  head -c 1048576 /dev/urandom > "$d/log"

  scrape > "$work/a"
  s=$(date +%s%N)
  line="append line of a 100 byte record ..............................................................."
  for _ in $(seq 1000); do echo "$line" >> "$d/log"; done
  echo "run $run: 1,000 appends $(( ($(date +%s%N) - s) / 1000000 )) ms"
  scrape > "$work/b"
  report appends "$work/a" "$work/b"

  s=$(date +%s%N)
  python3 "$helper" create "$d/files" "$N"
  echo "run $run: $N creates $(( ($(date +%s%N) - s) / 1000000 )) ms"
  scrape > "$work/c"
  report creates "$work/b" "$work/c"

  kill -TERM "$pid"; wait "$pid" || true; pid=
  for _ in $(seq 100); do mountpoint -q "$work/mnt" || break; sleep 0.05; done
done
