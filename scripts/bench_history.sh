#!/usr/bin/env bash
# Times history and audit-log queries on a large database: memfs init, then
# examples/gen_audit.rs writes ENTRIES audit entries (default 1,000,000) across
# 1000 sessions, 50 agents and 10,000 paths; one real file gets 100 versions
# through a mount. Then `memfsctl log` with filters and `memfsctl history` are
# timed (hyperfine when available, else `date +%s%N`), and a table of median
# milliseconds is printed.
#   ENTRIES (default 1000000)  RUNS (default 5)  KEEP=1 keeps the work dir
#   WORK=/some/dir (default: a new temp dir under /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES=${ENTRIES:-1000000}
RUNS=${RUNS:-5}

scripts/setup.sh
if ! command -v hyperfine >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  echo "bench_history: installing hyperfine" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; } ||
    echo "bench_history: no hyperfine; timing with date instead" >&2
fi
cargo build --release --bins --example gen_audit -q
bin=$PWD/target/release

work=${WORK:-$(mktemp -d /tmp/memfs-bench-history.XXXXXX)}
mkdir -p "$work"
memfs_pid=
cleanup() {
  set +e
  if [ -n "$memfs_pid" ]; then kill -TERM "$memfs_pid" 2>/dev/null; wait "$memfs_pid" 2>/dev/null; fi
  mountpoint -q "$work/mnt" && umount -l "$work/mnt"
  if [ "${KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

cat > "$work/memfs.toml" <<TOML
database = "$work/memfs.db"
[[stores]]
name = "kb"
scope = "org"
TOML
export MEMFS_CONFIG=$work/memfs.toml
ctl() { "$bin/memfsctl" "$@"; }
"$bin/memfs" init >/dev/null 2>&1

s=$(date +%s%N)
"$bin/examples/gen_audit" --db "$work/memfs.db" --store kb --entries "$ENTRIES" \
  --sessions 1000 --agents 50 --paths 10000 --batch 10000
gen_ms=$(( ($(date +%s%N) - s) / 1000000 ))

# One real file with 100 versions, written through a mount (one close each).
mkdir -p "$work/mnt"
"$bin/memfs" mount "$work/mnt" --agent bench-writer --session bench-hot 2>"$work/memfs.log" &
memfs_pid=$!
for _ in $(seq 200); do mountpoint -q "$work/mnt" && break; sleep 0.05; done
mountpoint -q "$work/mnt" || { cat "$work/memfs.log"; exit 1; }
mkdir -p "$work/mnt/kb/bench"
python3 - "$work/mnt/kb/bench/hot.md" <<'PY'
import sys
p = sys.argv[1]
for i in range(100):
    with open(p, "w") as f:
        f.write("".join(f"line {j} of version {i}\n" for j in range(50)))
PY
kill -TERM "$memfs_pid"; wait "$memfs_pid" || true; memfs_pid=

db_size=$(du -ch "$work"/memfs.db* | tail -1 | cut -f1)
versions=$(ctl --json history kb/bench/hot.md | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
total=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from audit').fetchone()[0])" "$work/memfs.db")

# A path and its directory from the middle of the log (session 500 of 1000).
path=$(ctl --json log --session sess-0500 --op write --limit 1 |
  python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["path"])')
dir=${path%/*}

# name | memfsctl arguments
queries=(
  "log --session S --limit 50|log --session sess-0500 --limit 50"
  "log --agent A --limit 50|log --agent agent-07 --limit 50"
  "log --user U --limit 50|log --user user-3 --limit 50"
  "log --path PATH --limit 50|log --path kb/$path --limit 50"
  "log --path DIR --limit 50|log --path kb/$dir --limit 50"
  "log --op rename --limit 50|log --op rename --limit 50"
  "log --since 1h --limit 50|log --since 1h --limit 50"
  "log --limit 50|log --limit 50"
  "history HOT (100 versions)|history kb/bench/hot.md"
  "history PATH (no inode; audit)|history kb/$path"
  "cat HOT --at now|cat kb/bench/hot.md --at 0s"
)

# Matching entries without --limit, for scale.
matches() {
  ctl --json "$@" 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' || echo "-"
}

median_ms_date() {
  local t=() s
  for _ in $(seq "$RUNS"); do
    s=$(date +%s%N)
    "$bin/memfsctl" "$@" >/dev/null
    t+=($(( ($(date +%s%N) - s) / 1000 )))
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)] / 1000}'
}

median_ms_hyperfine() {
  local json=$work/hf.json
  hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$json" --output=null \
    "$(printf '%q ' "$bin/memfsctl" "$@")" >/dev/null 2>&1 || return 1
  python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$json"
}

timer=date
command -v hyperfine >/dev/null 2>&1 && timer=hyperfine
echo
echo "PATH = kb/$path   DIR = kb/$dir   HOT = kb/bench/hot.md"
echo "audit entries: $total (generated in ${gen_ms} ms)   hot.md versions: $versions   db: $db_size   timer: $timer, $RUNS runs"
printf '%-34s %12s %12s\n' "query" "median ms" "matches"
for q in "${queries[@]}"; do
  name=${q%%|*}
  read -r -a args <<<"${q#*|}"
  if [ "$timer" = hyperfine ]; then
    ms=$(median_ms_hyperfine "${args[@]}") || ms=$(median_ms_date "${args[@]}")
  else
    ms=$(median_ms_date "${args[@]}")
  fi
  case ${args[0]} in
    log)
      unlimited=()
      skip=0
      for a in "${args[@]}"; do
        if [ $skip = 1 ]; then skip=0; continue; fi
        if [ "$a" = --limit ]; then skip=1; continue; fi
        unlimited+=("$a")
      done
      if [ ${#unlimited[@]} -eq 1 ]; then n=$total; else n=$(matches "${unlimited[@]}"); fi
      ;;
    history) n=$(matches "${args[@]}") ;;
    *) n="-" ;;
  esac
  printf '%-34s %12s %12s\n' "$name" "$ms" "$n"
done
s=$(date +%s%N)
ctl audit verify
echo "audit verify (1 run): $(( ($(date +%s%N) - s) / 1000000 )) ms"
