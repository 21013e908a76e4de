#!/usr/bin/env bash
# The cost of encryption at rest: writes and reads one random file (64 MiB by
# default) through a memfs mount, once with a plaintext store and once with an
# encrypted one, RUNS times each; prints the median MiB/s of each. Reads are
# cold: the kernel's caches are dropped first (SQLite's page cache stays warm).
#
#   scripts/bench_crypt.sh            MIB=64 RUNS=3, database under $TMPDIR
#   DIR=/some/dir scripts/bench_crypt.sh   put the databases there instead
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${MIB:-64}
RUNS=${RUNS:-3}
bin=${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release}
[ -x "$bin/memfs" ] || cargo build --release --bins -q
work=$(mktemp -d "${DIR:-/tmp}/memfs-bench-crypt.XXXXXX")
pid=
cleanup() {
  set +e
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  mountpoint -q "$work/mnt" && umount -l "$work/mnt"
  rm -rf "$work"
}
trap cleanup EXIT
# A new random file per run, so no run deduplicates against an earlier one.
for i in $(seq "$RUNS"); do head -c $((MIB << 20)) /dev/urandom > "$work/random$i.bin"; done
"$bin/memfsctl" key generate "$work/master.key" >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rate() { awk -v b=$((MIB << 20)) -v t="$1" 'BEGIN {printf "%.0f", b / 1048576 / t}'; }
now() { date +%s.%N; }

for mode in plain encrypted; do
  rm -rf "$work/$mode" && mkdir -p "$work/$mode" "$work/mnt"
  {
    echo "database = \"$work/$mode/memfs.db\""
    [ "$mode" = encrypted ] && echo "key_file = \"$work/master.key\""
    echo "[[stores]]"
    echo "name = \"bench\""
  } > "$work/$mode/memfs.toml"
  export MEMFS_CONFIG=$work/$mode/memfs.toml
  "$bin/memfs" init 2>/dev/null
  "$bin/memfs" mount "$work/mnt" --agent bench --session bench 2>"$work/$mode/log" &
  pid=$!
  for _ in $(seq 200); do mountpoint -q "$work/mnt" && break; sleep 0.05; done
  mountpoint -q "$work/mnt" || { cat "$work/$mode/log"; exit 1; }
  w=() r=()
  for i in $(seq "$RUNS"); do
    t0=$(now); cp "$work/random$i.bin" "$work/mnt/bench/f$i"; t1=$(now)
    w+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
    sync; echo 3 > /proc/sys/vm/drop_caches
    t0=$(now); cat "$work/mnt/bench/f$i" > /dev/null; t1=$(now)
    r+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
    cmp -s "$work/random$i.bin" "$work/mnt/bench/f$i" || { echo "f$i differs"; exit 1; }
  done
  kill -TERM "$pid"; wait "$pid" || true; pid=
  wm=$(printf '%s\n' "${w[@]}" | median) rm_=$(printf '%s\n' "${r[@]}" | median)
  printf '%-10s write %5s MiB/s   read %5s MiB/s   (%s MiB, median of %s; db %s)\n' \
    "$mode" "$(rate "$wm")" "$(rate "$rm_")" "$MIB" "$RUNS" \
    "$(du -sh "$work/$mode/memfs.db" | cut -f1)"
done
