#!/usr/bin/env bash
# POSIX conformance runner: pjdfstest (Rust rewrite), fsx and stress-ng's
# filesystem class, run against a fresh memfs mount and, as a reference,
# bindfs over a tmpfs directory. Needs root and /dev/fuse (Debian).
#
#   scripts/conformance.sh                     # everything (about 10 minutes)
#   SUITES="pjdfstest fsx" scripts/conformance.sh
#   QUICK=1 scripts/conformance.sh             # stress-ng stressors run 1 s instead of 3 s
#   STRICT=1 scripts/conformance.sh            # exit 1 if memfs fails more than bindfs,
#                                              # or fails a test not listed as justified in
#                                              # docs/conformance-exceptions.md
#
# Other knobs (environment):
#   TARGETS="memfs bindfs"   targets to test (in this order)
#   WORKDIR=DIR              where mounts and logs go (default: a new /tmp/mc.*, short for socket paths)
#   FSX_OPS=50000            operations per fsx run
#   FSX_SEED=N               the "random" fsx seed (default: drawn from /dev/urandom, printed)
#   STRESS_TIMEOUT=3         seconds per stress-ng stressor (QUICK=1 makes it 1)
#   STRESSORS="a b"          stress-ng stressors (default: class filesystem minus STRESS_EXCLUDE)
#   STRESS_EXCLUDE="bind-mount binderfs procfs verity"
#   MEMFS_DB_SIZE=50%        size of the tmpfs holding memfs's database (a fresh one per suite)
#   BIND_TMPFS_SIZE=2G       size of the tmpfs under bindfs
#
# Output: one RESULT line per suite and target as soon as it finishes, then a
# table. "run" counts tests that ran (skipped ones excluded); for fsx a test is
# one fsx invocation (seed 42, then the random seed), for stress-ng one stressor.
# Failed test names and every tool's log are kept under WORKDIR/logs.
#
# Exit status: 0 when every suite could run (test failures are reported, not
# fatal), 2 when something could not be set up or run (no summary, mount
# failure, missing tool), 1 with STRICT=1 when memfs failures are not accepted.
# Everything this script mounts is unmounted on exit, also on failure or Ctrl-C.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SUITES="${SUITES:-pjdfstest fsx stress}"
TARGETS="${TARGETS:-memfs bindfs}"
QUICK="${QUICK:-0}"
STRICT="${STRICT:-0}"
FSX_OPS="${FSX_OPS:-50000}"
FSX_SEED="${FSX_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
if [ "$QUICK" = 1 ]; then
  STRESS_TIMEOUT="${STRESS_TIMEOUT:-1}"
else
  STRESS_TIMEOUT="${STRESS_TIMEOUT:-3}"
fi
STRESS_EXCLUDE="${STRESS_EXCLUDE:-bind-mount binderfs procfs verity}"
MEMFS_DB_SIZE="${MEMFS_DB_SIZE:-50%}"   # tmpfs holding memfs's database (only what is used counts)
BIND_TMPFS_SIZE="${BIND_TMPFS_SIZE:-2G}"
EXCEPTIONS_FILE="$ROOT/docs/conformance-exceptions.md"
export PATH="$HOME/.cargo/bin:$PATH"
export NO_COLOR=1

log() { printf '%s conformance: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
INFRA_ERRORS=()
infra() { INFRA_ERRORS+=("$*"); log "ERROR: $*"; }
die() { log "FATAL: $*"; exit 2; }

for s in $SUITES; do
  case "$s" in pjdfstest | fsx | stress) ;; *) die "unknown suite '$s' (pjdfstest fsx stress)" ;; esac
done
for t in $TARGETS; do
  case "$t" in memfs | bindfs) ;; *) die "unknown target '$t' (memfs bindfs)" ;; esac
done
has_suite() { [[ " $SUITES " == *" $1 "* ]]; }
has_target() { [[ " $TARGETS " == *" $1 "* ]]; }

[ "$(id -u)" -eq 0 ] || die "must run as root (mounts, pjdfstest switches users)"

# ---------------------------------------------------------------- install
install_deps() {
  local pkgs=()
  command -v fusermount3 >/dev/null 2>&1 || pkgs+=(fuse3)
  if has_target bindfs; then command -v bindfs >/dev/null 2>&1 || pkgs+=(bindfs); fi
  if has_suite stress; then command -v stress-ng >/dev/null 2>&1 || pkgs+=(stress-ng); fi
  if has_suite pjdfstest; then
    dpkg-query -W -f='${Status}' libacl1-dev 2>/dev/null | grep -q 'ok installed' || pkgs+=(libacl1-dev)
    command -v setfacl >/dev/null 2>&1 || pkgs+=(acl)
  fi
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq "${pkgs[@]}" >/dev/null || die "apt-get install ${pkgs[*]} failed"
  fi
  command -v cargo >/dev/null 2>&1 || die "cargo (Rust) is required"
  if has_suite pjdfstest && ! command -v pjdfstest >/dev/null 2>&1; then
    log "cargo install pjdfstest"
    cargo install pjdfstest >&2 || die "cargo install pjdfstest failed"
  fi
  if has_suite fsx && ! command -v fsx >/dev/null 2>&1; then
    log "cargo install fsx"
    cargo install fsx >&2 || die "cargo install fsx failed"
  fi
  if [ ! -e /dev/fuse ]; then
    modprobe fuse 2>/dev/null || true
    [ -e /dev/fuse ] || die "/dev/fuse is missing"
  fi
}
install_deps

if has_target memfs; then
  log "building memfs (cargo build --release --bins)"
  (cd "$ROOT" && cargo build --release --bins >&2) || die "cargo build failed"
fi
MEMFS="$ROOT/target/release/memfs"

# ---------------------------------------------------------------- work dir, cleanup
if [ -n "${WORKDIR:-}" ]; then
  mkdir -p "$WORKDIR" || die "cannot create $WORKDIR"
  W="$(cd "$WORKDIR" && pwd -P)"
else
  W="$(mktemp -d /tmp/mc.XXXXXX)" || die "mktemp failed"
  W="$(cd "$W" && pwd -P)"
fi
# pjdfstest switches to other users, who must be able to reach the mounts
# (mktemp makes 0700 directories: every such test would fail with EACCES).
chmod 755 "$W"
LOGS="$W/logs"
mkdir -p "$LOGS"

MOUNTED=()     # tmpfs/FUSE mount points to unmount, in mount order
MEMFS_PID=""
MEMFS_MNT="$W/m"  # short: pjdfstest binds unix sockets (108-byte paths)
BIND_SRC="$W/bindfs-src"
BIND_MNT="$W/b"

unmount_path() { # PATH: unmount a FUSE or tmpfs mount, falling back to a lazy unmount
  local p="$1" i
  mountpoint -q "$p" 2>/dev/null || return 0
  for i in 1 2 3 4 5; do
    fusermount3 -u "$p" 2>/dev/null || umount "$p" 2>/dev/null || true
    mountpoint -q "$p" 2>/dev/null || return 0
    sleep 1
  done
  umount -l "$p" 2>/dev/null || fusermount3 -uz "$p" 2>/dev/null || true
  mountpoint -q "$p" 2>/dev/null && log "could not unmount $p"
  return 0
}

stop_memfs() {
  if [ -n "$MEMFS_PID" ] && kill -0 "$MEMFS_PID" 2>/dev/null; then
    kill -TERM "$MEMFS_PID" 2>/dev/null
    local i
    for i in $(seq 1 150); do
      kill -0 "$MEMFS_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$MEMFS_PID" 2>/dev/null; then
      log "memfs daemon $MEMFS_PID ignored SIGTERM, killing it"
      kill -KILL "$MEMFS_PID" 2>/dev/null
    fi
    wait "$MEMFS_PID" 2>/dev/null
  fi
  MEMFS_PID=""
  if mountpoint -q "$MEMFS_MNT" 2>/dev/null; then
    "$MEMFS" umount "$MEMFS_MNT" >/dev/null 2>&1 || true
    unmount_path "$MEMFS_MNT"
  fi
}

# shellcheck disable=SC2317  # invoked through the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_memfs
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    unmount_path "${MOUNTED[$i]}"
  done
  log "logs kept in $LOGS"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

mount_tmpfs() { # DIR NAME SIZE
  mkdir -p "$1"
  mount -t tmpfs -o "size=$3,mode=0755" "$2" "$1" || return 1
  MOUNTED+=("$1")
}

# ---------------------------------------------------------------- targets
# Every start is a fresh database: memfs keeps every version of every file, so
# the history of one suite (fsx commits on every fsync and close; stress-ng's
# hdd, iomix and fallocate write gigabytes) must not fill the next suite's space.
start_memfs() {
  mkdir -p "$MEMFS_MNT"
  if ! mountpoint -q "$W/memfs-db"; then
    mount_tmpfs "$W/memfs-db" memfs-conformance-db "$MEMFS_DB_SIZE" ||
      { infra "cannot mount the memfs database tmpfs"; return 1; }
  fi
  rm -rf "${W:?}/memfs-db/"*
  mkdir -p "$W/memfs-db/spill"
  cat >"$W/memfs.toml" <<EOF
database = "$W/memfs-db/memfs.db"

[daemon]
spill_dir = "$W/memfs-db/spill"

[[stores]]
name = "conf"
scope = "org"
EOF
  "$MEMFS" --config "$W/memfs.toml" init >>"$LOGS/memfs-daemon.log" 2>&1 ||
    { infra "memfs init failed (see $LOGS/memfs-daemon.log)"; return 1; }
  "$MEMFS" --config "$W/memfs.toml" mount "$MEMFS_MNT" --agent conf --session s1 \
    >>"$LOGS/memfs-daemon.log" 2>&1 &
  MEMFS_PID=$!
  local i
  for i in $(seq 1 300); do
    mountpoint -q "$MEMFS_MNT" && [ -d "$MEMFS_MNT/conf" ] && return 0
    kill -0 "$MEMFS_PID" 2>/dev/null || break
    sleep 0.1
  done
  infra "memfs did not mount (see $LOGS/memfs-daemon.log)"
  stop_memfs
  return 1
}

start_bindfs() {
  mountpoint -q "$BIND_SRC" || mount_tmpfs "$BIND_SRC" bindfs-conformance-src "$BIND_TMPFS_SIZE" ||
    { infra "cannot mount the bindfs tmpfs"; return 1; }
  mkdir -p "$BIND_MNT"
  # As root bindfs mounts with allow_other,default_permissions, like memfs.
  bindfs "$BIND_SRC" "$BIND_MNT" >>"$LOGS/bindfs.log" 2>&1 || { infra "bindfs failed to mount"; return 1; }
  MOUNTED+=("$BIND_MNT")
}

target_dir() {
  case "$1" in
    memfs) echo "$MEMFS_MNT/conf" ;; # the mount root itself is read-only (EROFS)
    bindfs) echo "$BIND_MNT" ;;
  esac
}

# Is the target usable? A dead memfs daemon is restarted (and noted).
declare -A RESTARTS=()
ensure_target() {
  local t="$1" d
  d="$(target_dir "$t")"
  case "$t" in
    memfs)
      if [ -n "$MEMFS_PID" ] && kill -0 "$MEMFS_PID" 2>/dev/null && mountpoint -q "$MEMFS_MNT" &&
        timeout 10 stat "$d" >/dev/null 2>&1; then
        return 0
      fi
      ;;
    bindfs)
      if mountpoint -q "$BIND_MNT" && timeout 10 stat "$d" >/dev/null 2>&1; then
        return 0
      fi
      ;;
  esac
  case "$t" in
    memfs)
      log "memfs mount is gone or hung; restarting it"
      RESTARTS[memfs]=$((${RESTARTS[memfs]:-0} + 1))
      stop_memfs
      start_memfs
      ;;
    bindfs)
      log "bindfs mount is gone or hung; remounting it"
      RESTARTS[bindfs]=$((${RESTARTS[bindfs]:-0} + 1))
      unmount_path "$BIND_MNT"
      start_bindfs
      ;;
  esac
}

# ---------------------------------------------------------------- results
declare -A RUN=() FAIL=() SKIP=() SECS=()
record() { # SUITE TARGET RUN FAILED SKIPPED SECONDS [NOTE]
  local k="$1/$2"
  RUN[$k]=$3 FAIL[$k]=$4 SKIP[$k]=$5 SECS[$k]=$6
  printf 'RESULT %-10s %-7s run=%-4s failed=%-3s skipped=%-3s time=%ss%s\n' \
    "$1" "$2" "$3" "$4" "$5" "$6" "${7:+  ($7)}"
}

# ---------------------------------------------------------------- pjdfstest
cat >"$W/pjdfstest.toml" <<'EOF'
[features]
posix_fallocate = {}
rename_ctime = {}
utime_now = {}
utimensat = {}

[settings]
# 0.001 gives false failures even on tmpfs
naptime = 0.02
allow_remount = false

[dummy_auth]
entries = [["nobody", "nogroup"], ["daemon", "daemon"]]
EOF

# pjdfstest 0.2.x's create_path_max computes (PATH_MAX-1 - len(base)) % (NAME_MAX/2) - 1,
# where base is the -p path plus two ".tmpXXXXXX" components (22 bytes). When the
# remainder is 0 this underflows and every *::enametoolong_path test panics with
# "capacity overflow" (seen on tmpfs with -p /tmp/pt/t). Pick a directory name
# whose length avoids that.
pjd_dir() {
  local base="$1" name_max path_max n p
  name_max="$(getconf NAME_MAX "$base" 2>/dev/null || echo 255)"
  path_max="$(getconf PATH_MAX "$base" 2>/dev/null || echo 4096)"
  for n in pjd pjd1 pjd12; do
    p="$base/$n"
    if (((path_max - 1 - ${#p} - 22) % (name_max / 2) != 0)); then
      echo "$p"
      return
    fi
  done
  echo "$base/pjd"
}

run_pjdfstest() { # TARGET
  local t="$1" dir out rc start secs summary
  dir="$(pjd_dir "$(target_dir "$t")")"
  out="$LOGS/$t-pjdfstest.log"
  mkdir -p "$dir" || { infra "pjdfstest: cannot create $dir on $t"; return; }
  start=$(date +%s)
  timeout -k 10 1200 pjdfstest -c "$W/pjdfstest.toml" -p "$dir" >"$out" 2>&1
  rc=$?
  secs=$(($(date +%s) - start))
  sed -i 's/\x1b\[[0-9;]*m//g' "$out"
  grep -E '[[:space:]]FAILED$' "$out" | awk '{print "pjdfstest:" $1}' >"$LOGS/$t-pjdfstest.failed"
  summary="$(grep -E '^Summary: ' "$out" | tail -n1)"
  if [[ "$summary" =~ ([0-9]+)\ failed,\ ([0-9]+)\ skipped,\ ([0-9]+)\ passed,\ ([0-9]+)\ expected\ failures,\ ([0-9]+)\ total ]]; then
    local f=${BASH_REMATCH[1]} s=${BASH_REMATCH[2]} p=${BASH_REMATCH[3]} x=${BASH_REMATCH[4]}
    record pjdfstest "$t" $((f + p + x)) "$f" "$s" "$secs"
  else
    infra "pjdfstest on $t produced no summary (exit $rc, see $out)"
    record pjdfstest "$t" - - - "$secs" "no summary, exit $rc"
  fi
}

# ---------------------------------------------------------------- fsx
run_fsx() { # TARGET
  local t="$1" dir start secs run=0 failed=0 seed label out rc notes=""
  dir="$(target_dir "$t")/fsx"
  mkdir -p "$dir" || { infra "fsx: cannot create $dir on $t"; return; }
  : >"$LOGS/$t-fsx.failed"
  start=$(date +%s)
  for seed in 42 "$FSX_SEED"; do
    if [ "$seed" = 42 ]; then label=fixed; else label=random; fi
    out="$LOGS/$t-fsx-$label-seed$seed.log"
    mkdir -p "$LOGS/$t-fsx-$label-artifacts"
    ensure_target "$t" || { infra "fsx: $t is not mounted"; continue; }
    timeout -k 10 1800 fsx -N "$FSX_OPS" -S "$seed" -P "$LOGS/$t-fsx-$label-artifacts" \
      "$dir/fsx-$label.dat" >"$out" 2>&1
    rc=$?
    run=$((run + 1))
    if [ $rc -ne 0 ] || ! grep -q 'All operations completed A-OK' "$out"; then
      failed=$((failed + 1))
      echo "fsx:seed-$label" >>"$LOGS/$t-fsx.failed"
      notes+="${notes:+; }seed $seed failed (exit $rc)"
    fi
  done
  secs=$(($(date +%s) - start))
  record fsx "$t" "$run" "$failed" 0 "$secs" "$notes"
}

# ---------------------------------------------------------------- stress-ng
stressor_list() {
  if [ -n "${STRESSORS:-}" ]; then
    echo "$STRESSORS"
    return
  fi
  local all s out=()
  all="$(stress-ng --class 'filesystem?' 2>&1 | sed -n 's/.*stressors: //p')"
  for s in $all; do
    [[ " $STRESS_EXCLUDE " == *" $s "* ]] || out+=("$s")
  done
  echo "${out[*]}"
}

# The FUSE-NOTES run is `stress-ng --class filesystem --sequential 1 --timeout 3s
# --temp-path DIR --exclude bind-mount,binderfs,procfs,verity --verify --metrics-brief`.
# Here each stressor of that class runs as its own stress-ng process with the same
# options, so that each one's verdict (and log) can be told apart.
run_stress() { # TARGET
  local t="$1" dir start secs run=0 failed=0 skipped=0 s out rc list
  dir="$(target_dir "$t")/stress"
  mkdir -p "$dir" || { infra "stress: cannot create $dir on $t"; return; }
  mkdir -p "$LOGS/$t-stress"
  : >"$LOGS/$t-stress.failed"
  : >"$LOGS/$t-stress.skipped"
  list="$(stressor_list)"
  [ -n "$list" ] || { infra "stress-ng lists no filesystem stressors"; return; }
  start=$(date +%s)
  for s in $list; do
    out="$LOGS/$t-stress/$s.log"
    ensure_target "$t" || { infra "stress: $t is not mounted"; break; }
    timeout -k 10 $((STRESS_TIMEOUT + 60)) stress-ng --"$s" 1 --timeout "${STRESS_TIMEOUT}s" \
      --temp-path "$dir" --verify --metrics-brief >"$out" 2>&1
    rc=$?
    echo "exit status: $rc" >>"$out"
    [ "$t" = memfs ] && echo "$s: memfs database now $(db_usage) MiB" >>"$LOGS/memfs-db-usage.log"
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
      failed=$((failed + 1))
      echo "stress:$s (timed out)" >>"$LOGS/$t-stress.failed"
    elif grep -qE '^stress-ng: fail:|unsuccessful run completed' "$out" || [ $rc -eq 1 ] || [ $rc -eq 2 ] ||
      [ $rc -eq 5 ] || [ $rc -eq 6 ] || [ $rc -gt 7 ]; then
      failed=$((failed + 1))
      echo "stress:$s" >>"$LOGS/$t-stress.failed"
    elif grep -qi 'skipping stressor' "$out" || [ $rc -eq 3 ] || [ $rc -eq 4 ]; then
      skipped=$((skipped + 1))
      echo "stress:$s" >>"$LOGS/$t-stress.skipped"
    else
      run=$((run + 1))
    fi
  done
  secs=$(($(date +%s) - start))
  # failed stressors ran too
  record stress "$t" $((run + failed)) "$failed" "$skipped" "$secs"
}

# ---------------------------------------------------------------- main
log "work dir $W; suites: $SUITES; targets: $TARGETS; fsx random seed: $FSX_SEED; stress-ng ${STRESS_TIMEOUT}s per stressor"
echo "fsx: seeds 42 and $FSX_SEED (random), $FSX_OPS operations each"
if has_target bindfs; then start_bindfs || die "bindfs could not be mounted"; fi

db_usage() { du -sm "$W/memfs-db" 2>/dev/null | cut -f1; }

for suite in $SUITES; do
  for t in $TARGETS; do
    log "$suite on $t"
    if [ "$t" = memfs ]; then
      # a fresh daemon and database for every suite
      stop_memfs
      if ! start_memfs; then
        record "$suite" "$t" - - - 0 "memfs could not be mounted"
        continue
      fi
    fi
    if ! ensure_target "$t"; then
      infra "$suite: $t is not mounted"
      record "$suite" "$t" - - - 0 "target not mounted"
      continue
    fi
    case "$suite" in
      pjdfstest) run_pjdfstest "$t" ;;
      fsx) run_fsx "$t" ;;
      stress) run_stress "$t" ;;
    esac
    if [ "$t" = memfs ]; then
      log "memfs database after $suite: $(db_usage) MiB"
      echo "memfs database after $suite: $(db_usage) MiB" >>"$LOGS/memfs-db-usage.log"
    fi
  done
done
# A suite that killed the daemon shows up here too.
for t in $TARGETS; do ensure_target "$t" >/dev/null 2>&1 || true; done

# ---------------------------------------------------------------- report
echo
echo "== Conformance summary (run/failed/skipped, wall time) =="
header="$(printf '%-10s' suite)"
for t in $TARGETS; do header+="$(printf ' | %-24s' "$t")"; done
echo "$header"
for suite in $SUITES; do
  line="$(printf '%-10s' "$suite")"
  for t in $TARGETS; do
    k="$suite/$t"
    line+="$(printf ' | %-24s' "${RUN[$k]:--}/${FAIL[$k]:--}/${SKIP[$k]:--} ${SECS[$k]:-0}s")"
  done
  echo "$line"
done
for t in "${!RESTARTS[@]}"; do
  echo "note: the $t mount died and was restarted ${RESTARTS[$t]} time(s) (see $LOGS/memfs-daemon.log)"
done

# Justified exceptions: backquoted `suite:pattern` entries (shell globs) in the
# "Justified exceptions" section of docs/conformance-exceptions.md.
JUSTIFIED=()
if [ -f "$EXCEPTIONS_FILE" ]; then
  # shellcheck disable=SC2016  # the backquotes are literal
  while IFS= read -r p; do JUSTIFIED+=("$p"); done < <(
    awk '/^## /{on = ($0 ~ /^## Justified/)} on' "$EXCEPTIONS_FILE" |
      grep -oE '`(pjdfstest|fsx|stress):[^`]+`' | tr -d '`' | sort -u
  )
fi
justified() {
  local n="${1%% (*}" p
  for p in "${JUSTIFIED[@]}"; do
    # shellcheck disable=SC2053
    [[ "$n" == $p ]] && return 0
  done
  return 1
}

STRICT_BAD=0
if has_target memfs; then
  unexpected=()
  njust=0
  for suite in $SUITES; do
    f="$LOGS/memfs-$suite.failed"
    [ -f "$f" ] || continue
    while IFS= read -r name; do
      [ -n "$name" ] || continue
      if justified "$name"; then njust=$((njust + 1)); else unexpected+=("$name"); fi
    done <"$f"
    if has_target bindfs && [[ "${FAIL[$suite/memfs]:-}" =~ ^[0-9]+$ ]] && [[ "${FAIL[$suite/bindfs]:-}" =~ ^[0-9]+$ ]] &&
      [ "${FAIL[$suite/memfs]}" -gt "${FAIL[$suite/bindfs]}" ]; then
      echo "memfs fails more $suite tests than bindfs (${FAIL[$suite/memfs]} > ${FAIL[$suite/bindfs]})"
      STRICT_BAD=1
    fi
  done
  echo
  echo "memfs failures justified by docs/conformance-exceptions.md: $njust"
  echo "memfs failures NOT in the exceptions list: ${#unexpected[@]}"
  for n in "${unexpected[@]}"; do echo "  $n"; done
  [ ${#unexpected[@]} -eq 0 ] || STRICT_BAD=1
fi
for t in $TARGETS; do
  for suite in $SUITES; do
    [ -s "$LOGS/$t-$suite.failed" ] && echo "failed test names on $t ($suite): $LOGS/$t-$suite.failed"
  done
done

if [ ${#INFRA_ERRORS[@]} -gt 0 ]; then
  echo
  echo "Could not run everything:"
  for e in "${INFRA_ERRORS[@]}"; do echo "  $e"; done
  exit 2
fi
if [ "$STRICT" = 1 ] && [ "$STRICT_BAD" = 1 ]; then
  echo "STRICT=1: memfs failures beyond the accepted exceptions"
  exit 1
fi
exit 0
