#!/usr/bin/env bash
# Times file workloads on tmpfs, bindfs over tmpfs (the passthrough FUSE
# baseline) and memfs (database on tmpfs) in one run; prints the median of each
# workload per target and memfs's ratios to bindfs and to tmpfs, then memfs's
# database growth for the history workloads and the daemon's peak RSS.
#
#   scripts/bench.sh [NAME=DIR ...]     extra targets (any mounted directory)
#   N=10000 RUNS=3 BIG=100000           files, runs per target, files for the RSS pass
#   BIG=0 skips the 100k-file RSS pass; QUICK=1 is N=2000 RUNS=1 BIG=0.
#
# "cold" means the kernel's caches were dropped (page cache, dentries and inodes);
# memfs's own SQLite page cache stays warm, as it would in a running sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${QUICK:-}" ]; then N=${N:-2000} RUNS=${RUNS:-1} BIG=${BIG:-0}; fi
N=${N:-10000}
RUNS=${RUNS:-3}
BIG=${BIG:-100000}

scripts/setup.sh
need=()
command -v bindfs >/dev/null || need+=(bindfs)
command -v hyperfine >/dev/null || need+=(hyperfine)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --bins -q
bin=$PWD/target/release
helper=$PWD/scripts/bench_helper.py

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
mount -t tmpfs -o size=12g tmpfs "$work/tmpfs"
mkdir -p "$work/tmpfs/plain" "$work/tmpfs/under-bindfs" "$work/tmpfs/db"
bindfs "$work/tmpfs/under-bindfs" "$work/bindfs"
db=$work/tmpfs/db/memfs.db
cat > "$work/memfs.toml" <<TOML
database = "$db"
[daemon]
max_file_bytes = 4294967296
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

# Bytes the database holds in live pages (checkpointed, free pages excluded).
db_bytes() { python3 "$helper" dbsize "$db"; }
. scripts/bench_workloads.sh

# One run of every workload in DIR ($2 = target name); prints "workload ms"
# lines, and memfs's database growth for the appends on fd 3.
run_all() {
  local growth=
  [ "$2" = memfs ] && growth=db_bytes
  run_workloads "$1" "$N" 256 2000 "$2" "$growth"
}

# The 256 MiB written comes from memory (random, so it neither compresses nor
# deduplicates), so the time is the filesystem's, not /dev/urandom's.
head -c 268435456 /dev/urandom > "$work/tmpfs/src256"

declare -A times
names=()
exec 3>"$work/growth"
for t in "${targets[@]}"; do names+=("${t%%=*}"); done
# Runs interleave the targets (tmpfs, bindfs, memfs, tmpfs, ...), so that a
# machine that slows down mid-bench slows every target alike: the ratios are
# what the bench is for.
for _ in $(seq "$RUNS"); do
  for t in "${targets[@]}"; do
    name=${t%%=*}; dir=${t#*=}
    while read -r w v; do times[$name,$w]+="$v "; done < <(run_all "$dir" "$name")
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
order="create_files cat_cold cat_warm grep_r_cold stat_warm ls_l_cold rm_rf write_256M_fsync read_256M_cold git_add_commit_2000 append_1000 append_8_procs"
echo "memfs bench: N=$N files, medians of $RUNS runs, times in ms"
printf '%-20s' "workload"; for n in "${names[@]}"; do printf '%9s' "$n"; done
printf '%14s%13s%16s\n' "memfs/bindfs" "memfs/tmpfs" "run by run"
for w in $order; do
  printf '%-20s' "$w"
  declare -A med=()
  for n in "${names[@]}"; do med[$n]=$(echo "${times[$n,$w]:-}" | median); printf '%9s' "${med[$n]}"; done
  # The spread: memfs/bindfs of each run (run i of each target ran back to
  # back), lowest to highest; a goal inside it is within this machine's noise.
  awk -v m="${med[memfs]}" -v b="${med[bindfs]}" -v t="${med[tmpfs]}" \
    -v ms="${times[memfs,$w]:-}" -v bs="${times[bindfs,$w]:-}" \
    'BEGIN {
      printf "%14.2f%13.2f", m / (b > 0 ? b : 1), m / (t > 0 ? t : 1)
      n = split(ms, x, " "); split(bs, y, " "); lo = ""; hi = ""
      for (i = 1; i <= n; i++) {
        r = x[i] / (y[i] > 0 ? y[i] : 1)
        if (lo == "" || r < lo) lo = r
        if (hi == "" || r > hi) hi = r
      }
      if (n > 0) printf "%10.2f-%.2f", lo, hi
      printf "\n"
    }'
done
growth=$(awk '{print $2}' "$work/growth" | median)
echo "memfs database growth for 1000 appends of 100 B to a 1 MiB file: $growth bytes (median)"
echo "memfs database after all runs: $(( $(db_bytes) / 1048576 )) MiB live"
echo "memfs daemon peak RSS during the runs: $(grep VmHWM /proc/$memfs_pid/status | awk '{print $2, $3}')"

if [ "$BIG" -gt 0 ]; then
  s=$(date +%s%N)
  python3 "$helper" create "$work/memfs/bench/big" "$BIG"
  c=$(ms "$s")
  drop_caches
  s=$(date +%s%N); find "$work/memfs/bench/big" -type f -printf '%s\n' >/dev/null
  grep -r "fox 7" "$work/memfs/bench/big" >/dev/null; g=$(ms "$s")
  echo "memfs store of $BIG files: create ${c} ms, cold stat+grep ${g} ms," \
    "daemon peak RSS $(grep VmHWM /proc/$memfs_pid/status | awk '{print $2, $3}')"
fi
