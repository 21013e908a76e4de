#!/usr/bin/env bash
# Times file workloads on tmpfs, bindfs over tmpfs (a passthrough FUSE baseline)
# and memfs (database on tmpfs) in one run, and prints medians and ratios.
#   N (files, default 2000)  RUNS (default 3)  extra targets: NAME=DIR arguments
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
RUNS=${RUNS:-3}

scripts/setup.sh
command -v bindfs >/dev/null || { apt-get update -qq && apt-get install -y -qq bindfs >/dev/null; }
cargo build --release --bins -q
bin=$PWD/target/release

work=$(mktemp -d /tmp/memfs-bench.XXXXXX)
memfs_pid=
cleanup() {
  set +e
  [ -n "$memfs_pid" ] && kill -TERM "$memfs_pid" 2>/dev/null && wait "$memfs_pid" 2>/dev/null
  for m in "$work/bindfs" "$work/memfs" "$work/tmpfs"; do
    mountpoint -q "$m" && umount -l "$m"
  done
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work"/{tmpfs,bindfs,memfs}
mount -t tmpfs -o size=2g tmpfs "$work/tmpfs"
mkdir -p "$work/tmpfs/plain" "$work/tmpfs/under-bindfs" "$work/tmpfs/db"
bindfs "$work/tmpfs/under-bindfs" "$work/bindfs"
cat > "$work/memfs.toml" <<TOML
database = "$work/tmpfs/db/memfs.db"
[[stores]]
name = "bench"
TOML
export MEMFS_CONFIG=$work/memfs.toml
"$bin/memfs" init 2>/dev/null
"$bin/memfs" mount "$work/memfs" --agent bench --session bench 2>"$work/memfs.log" &
memfs_pid=$!
for _ in $(seq 100); do mountpoint -q "$work/memfs" && break; sleep 0.05; done
mountpoint -q "$work/memfs" || { cat "$work/memfs.log"; exit 1; }

targets=("tmpfs=$work/tmpfs/plain" "bindfs=$work/bindfs" "memfs=$work/memfs/bench" "$@")

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

# One run of every workload in DIR; prints "workload ms" lines.
run_all() {
  local d=$1/w s
  rm -rf "$d"; mkdir -p "$d/files"
  s=$(date +%s%N)
  python3 - "$d/files" "$N" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = os.path.join(d, f"d{i % 20}")
    if i < 20:
        os.mkdir(sub)
    with open(os.path.join(sub, f"f{i}.txt"), "w") as f:
        f.write(f"memory note {i}: the quick brown fox {i * 7}\n" * 8)
PY
  echo "create_${N}_files $(ms "$s")"
  s=$(date +%s%N); find "$d/files" -type f -exec cat {} + >/dev/null; echo "cat_warm $(ms "$s")"
  s=$(date +%s%N); grep -r "fox 7" "$d/files" >/dev/null; echo "grep_r $(ms "$s")"
  s=$(date +%s%N); find "$d/files" -type f -printf '%s\n' >/dev/null; echo "stat_all $(ms "$s")"
  s=$(date +%s%N); ls -lR "$d/files" >/dev/null; echo "ls_lR $(ms "$s")"
  head -c 1048576 /dev/urandom > "$d/log"
  s=$(date +%s%N); for i in $(seq 1000); do echo "append line $i of a 100 byte record ......................................................." >> "$d/log"; done
  echo "append_1000 $(ms "$s")"
  s=$(date +%s%N); dd if=/dev/zero of="$d/big" bs=1M count=64 conv=fsync status=none; echo "write_64M_fsync $(ms "$s")"
  drop_caches
  s=$(date +%s%N); cat "$d/big" >/dev/null; echo "read_64M $(ms "$s")"
  s=$(date +%s%N); rm -rf "$d/files"; echo "rm_rf $(ms "$s")"
  rm -rf "$d"
}

declare -A times
names=()
for t in "${targets[@]}"; do
  name=${t%%=*}; dir=${t#*=}; names+=("$name")
  for r in $(seq "$RUNS"); do
    while read -r w v; do times[$name,$w]+="$v "; done < <(run_all "$dir")
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
workloads=$(printf '%s\n' "${!times[@]}" | sed 's/^[^,]*,//' | sort -u)
order="create_${N}_files cat_warm grep_r stat_all ls_lR append_1000 write_64M_fsync read_64M rm_rf"
printf '%-18s' "workload (ms)"; for n in "${names[@]}"; do printf '%10s' "$n"; done
printf '%14s%14s\n' "memfs/bindfs" "memfs/tmpfs"
for w in $order; do
  printf '%-18s' "$w"
  declare -A med=()
  for n in "${names[@]}"; do med[$n]=$(echo "${times[$n,$w]}" | median); printf '%10s' "${med[$n]}"; done
  awk -v m="${med[memfs]}" -v b="${med[bindfs]}" -v t="${med[tmpfs]}" \
    'BEGIN { printf "%14.2f%14.2f\n", m / (b > 0 ? b : 1), m / (t > 0 ? t : 1) }'
done
db=$work/tmpfs/db/memfs.db
echo "memfs database after $RUNS runs: $(du -ch "$db"* | tail -1 | cut -f1)"
echo "memfs daemon peak RSS: $(grep VmHWM /proc/$memfs_pid/status | awk '{print $2, $3}')"
