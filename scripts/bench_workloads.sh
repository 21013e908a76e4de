# The file workloads of scripts/bench.sh and scripts/bench_pg.sh, sourced by
# both (not run on its own). The caller sets $helper (scripts/bench_helper.py)
# and $work, and has written $work/tmpfs/src${BIG_MIB} (random bytes).

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
line="append line of a 100 byte record ................................................................"

# run_workloads DIR N BIG_MIB GIT_FILES [LABEL] [GROWTH]: one run of every
# workload in DIR/w; prints "workload ms" lines. GROWTH, when given, is a
# command printing the database's live bytes: the growth of the 1,000
# appends goes to fd 3 as "db_growth_append_1000 BYTES".
run_workloads() {
  local d=$1/w n=$2 big=$3 git_n=$4 label=${5:-bench} growth=${6:-} s before
  rm -rf "$d"; mkdir -p "$d"
  s=$(date +%s%N); python3 "$helper" create "$d/files" "$n"; echo "create_files $(ms "$s")"
  drop_caches
  s=$(date +%s%N); find "$d/files" -type f -exec cat {} + >/dev/null; echo "cat_cold $(ms "$s")"
  s=$(date +%s%N); find "$d/files" -type f -exec cat {} + >/dev/null; echo "cat_warm $(ms "$s")"
  drop_caches
  s=$(date +%s%N); grep -r "fox 7" "$d/files" >/dev/null; echo "grep_r_cold $(ms "$s")"
  s=$(date +%s%N); find "$d/files" -type f -printf '%s\n' >/dev/null; echo "stat_warm $(ms "$s")"
  drop_caches
  s=$(date +%s%N); ls -lR "$d/files" >/dev/null; echo "ls_l_cold $(ms "$s")"
  s=$(date +%s%N); rm -rf "$d/files"; echo "rm_rf $(ms "$s")"

  s=$(date +%s%N); dd if="$work/tmpfs/src$big" of="$d/big" bs=1M conv=fsync status=none
  echo "write_${big}M_fsync $(ms "$s")"
  drop_caches
  s=$(date +%s%N); cat "$d/big" >/dev/null; echo "read_${big}M_cold $(ms "$s")"
  rm -f "$d/big"

  python3 "$helper" create "$d/repo" "$git_n"
  git -C "$d/repo" init -q && git -C "$d/repo" config user.email b@b && git -C "$d/repo" config user.name b
  s=$(date +%s%N); (cd "$d/repo" && git add -A && git commit -qm bench); echo "git_add_commit_$git_n $(ms "$s")"

  head -c 1048576 /dev/urandom > "$d/log"
  [ -n "$growth" ] && before=$($growth)
  s=$(date +%s%N); for _ in $(seq 1000); do echo "$line" >> "$d/log"; done; echo "append_1000 $(ms "$s")"
  [ -n "$growth" ] && echo "db_growth_append_1000 $(( $($growth) - before ))" >&3

  : > "$d/shared"
  s=$(date +%s%N)
  for p in $(seq 8); do (for i in $(seq 250); do echo "p$p $i $line" >> "$d/shared"; done) & done; wait
  echo "append_8_procs $(ms "$s")"
  local lines; lines=$(wc -l < "$d/shared")
  [ "$lines" -eq 2000 ] || echo "bench: $label: 8 appenders wrote $lines lines, not 2000" >&2
  rm -rf "$d"
}
