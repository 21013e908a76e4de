#!/usr/bin/env bash
# memfs on SQLite against memfs on PostgreSQL (local Unix socket), in one run:
#
#  1. the metadata and file workloads of scripts/bench.sh (one daemon, one
#     store), database and PostgreSQL data directory both on tmpfs;
#  2. total creates per second from 4 daemons writing 4 different stores,
#     against 4 daemons writing one store (each daemon one writer process).
#
#   N=2000 RUNS=1 PAR=1000    files per workload, runs, files per daemon in (2)
#   BIN_DIR=DIR               run the binaries in DIR (say, an older build, to
#                             compare two builds on the same machine state)
#
# Prints medians in ms and the PostgreSQL/SQLite ratio per workload, then the
# parallel table. Goals (not tests): PostgreSQL within 2x of SQLite on the
# metadata workloads; 4 stores at least 3x the one-store rate.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
RUNS=${RUNS:-1}
PAR=${PAR:-1000}

scripts/setup.sh
source scripts/release_bins.sh
helper=$PWD/scripts/bench_helper.py
work=$(mktemp -d /tmp/memfs-benchpg.XXXXXX)
pids=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  for m in "$work"/mnt-*; do mountpoint -q "$m" && umount -l "$m"; done
  scripts/pg.sh stop "$work/tmpfs/pg" >/dev/null 2>&1
  mountpoint -q "$work/tmpfs" && umount -l "$work/tmpfs"
  rm -rf "$work"
}
trap cleanup EXIT

chmod 755 "$work"; mkdir -p "$work/tmpfs"
mount -t tmpfs -o size=8g,mode=755 tmpfs "$work/tmpfs"
PG_PORT=${PG_PORT:-54339} scripts/pg.sh start "$work/tmpfs/pg" >/dev/null
pgurl() { echo "postgres://postgres@/$1?host=$work/tmpfs/pg&port=${PG_PORT:-54339}"; }
newpg() {
  runuser -u postgres -- psql -h "$work/tmpfs/pg" -p "${PG_PORT:-54339}" -U postgres -qc "CREATE DATABASE $1" postgres
}

# A config and database for engine $1 (sqlite|pg) named $2, with stores s0..s4.
setup_db() {
  local engine=$1 name=$2 db
  if [ "$engine" = sqlite ]; then db=$work/tmpfs/$name.db; else newpg "$name"; db=$(pgurl "$name"); fi
  cat > "$work/$name.toml" <<TOML
database = "$db"
[daemon]
max_file_bytes = 4294967296
gc_interval_secs = 0
TOML
  for s in s0 s1 s2 s3 s4; do printf '[[stores]]\nname = "%s"\n' "$s" >> "$work/$name.toml"; done
  MEMFS_CONFIG=$work/$name.toml "$bin/memfs" init >/dev/null 2>&1
}

# Mounts config $1 at $2 with stores $3 (comma-separated); records the pid.
mount_memfs() {
  local args=() s
  for s in ${3//,/ }; do args+=(--store "$s"); done
  mkdir -p "$2"
  MEMFS_CONFIG=$work/$1.toml "$bin/memfs" mount "$2" --agent bench --session "b$$" "${args[@]}" 2>>"$work/$1.log" &
  pids+=($!)
  for _ in $(seq 200); do mountpoint -q "$2" && return 0; sleep 0.05; done
  cat "$work/$1.log"; exit 1
}

. scripts/bench_workloads.sh
head -c 67108864 /dev/urandom > "$work/tmpfs/src64"

run_all() { run_workloads "$1" "$N" 64 500 "$1"; }

declare -A times
for engine in sqlite pg; do
  setup_db "$engine" "one_$engine"
  mount_memfs "one_$engine" "$work/mnt-one-$engine" s0
  for _ in $(seq "$RUNS"); do
    while read -r w v; do times[$engine,$w]+="$v "; done < <(run_all "$work/mnt-one-$engine/s0")
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "memfs on SQLite vs PostgreSQL (local socket, both on tmpfs): N=$N, medians of $RUNS runs, ms"
printf '%-20s%9s%9s%8s\n' workload sqlite postgres 'pg/sq'
for w in create_files cat_cold cat_warm grep_r_cold stat_warm ls_l_cold rm_rf write_64M_fsync \
         read_64M_cold git_add_commit_500 append_1000 append_8_procs; do
  a=$(echo "${times[sqlite,$w]:-}" | median); b=$(echo "${times[pg,$w]:-}" | median)
  awk -v w="$w" -v a="$a" -v b="$b" 'BEGIN { printf "%-20s%9s%9s%8.2f\n", w, a, b, b / (a > 0 ? a : 1) }'
done

# 4 daemons, each with one writer creating PAR files: into 4 stores or one.
parallel() {
  local name=$1 mode=$2 i s dirs=()
  for i in 1 2 3 4; do
    local store=s0; [ "$mode" = four ] && store=s$i
    mount_memfs "$name" "$work/mnt-$name-$mode-$i" "$store"
    dirs+=("$work/mnt-$name-$mode-$i/$store/p$mode$i")
  done
  s=$(date +%s%N)
  local writers=()
  for d in "${dirs[@]}"; do python3 "$helper" create "$d" "$PAR" & writers+=($!); done
  # Only the writers: a bare `wait` would wait for the daemons too.
  for w in "${writers[@]}"; do wait "$w"; done
  local t; t=$(ms "$s")
  rate=$(( 4 * PAR * 1000 / (t > 0 ? t : 1) ))
}
echo
echo "4 daemons x $PAR creates each (one writer per daemon): total creates/s"
printf '%-10s%12s%12s%8s\n' engine '4 stores' '1 store' ratio
for engine in sqlite pg; do
  setup_db "$engine" "par_$engine"
  parallel "par_$engine" four; four=$rate
  parallel "par_$engine" one; one=$rate
  awk -v e="$engine" -v f="$four" -v o="$one" 'BEGIN { printf "%-10s%12d%12d%8.2f\n", e, f, o, f / (o > 0 ? o : 1) }'
done
