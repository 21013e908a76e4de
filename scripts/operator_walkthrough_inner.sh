#!/usr/bin/env bash
# The namespace half of scripts/operator_walkthrough.sh (run by it, not by hand):
# the staged install is laid over the host's directories, visible only here.
set -euo pipefail
WORK=$1
REPO=$2
ROOT=$WORK/root

# This namespace's copies of other FUSE mounts would keep their daemons alive.
awk '$3 ~ /^fuse/ { print $2 }' /proc/self/mounts | xargs -r -n1 umount -l 2>/dev/null || true
mkdir -p "$WORK/etc-up" "$WORK/etc-work" "$WORK/mnt/systemd" "$WORK/mnt/fstab"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$WORK/etc-up,workdir=$WORK/etc-work" /etc
cp -a "$ROOT/etc/." /etc/
mount -t overlay overlay -o "lowerdir=$ROOT/sbin:/usr/sbin" /usr/sbin
mount --bind "$ROOT/usr/local/bin" /usr/local/bin
export PATH=/usr/local/bin:$PATH
UNIT=/etc/systemd/system/memfs@.service
M1=$WORK/mnt/systemd
M2=$WORK/mnt/fstab
DAEMON=
cleanup() {
  [ -n "$DAEMON" ] && kill -TERM "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
  umount "$M2" 2>/dev/null || umount -l "$M2" 2>/dev/null || true
  umount -l "$M1" 2>/dev/null || true
}
trap cleanup EXIT

run() { echo; echo "\$ $*"; "$@"; }

# The example config, with its database in the work dir, a short lease TTL so
# the retention grace period (3 TTLs) passes within this walkthrough, and
# team-kb keeping the last 2 versions only (the example also keeps 90 days,
# and the rules are a union: nothing written today would go).
sed -i -e "s#^database = .*#database = \"$WORK/memfs.db\"#" \
       -e 's#^lease_ttl_secs = .*#lease_ttl_secs = 1.0#' \
       -e '/^keep_days = /d' \
       -e 's#^keep_versions = .*#keep_versions = 2#' /etc/memfs/memfs.toml
export MEMFS_CONFIG=/etc/memfs/memfs.toml

run memfs --version
run memfs init
run memfs doctor

echo; echo "== a mount as memfs@team-kb.service runs it"
cat >/etc/memfs/mounts/team-kb.env <<EOF
MEMFS_MOUNTPOINT=$M1
MEMFS_AGENT=planner-7
MEMFS_SESSION=boot
MEMFS_STORES=team-kb
MEMFS_METRICS=127.0.0.1:19464
EOF
run systemd-analyze verify --man=no /etc/systemd/system/memfs@team-kb.service /etc/systemd/system/memfs-serve.service
if [ -d /run/systemd/system ] && [ "$(ps -p 1 -o comm=)" = systemd ]; then
  run systemctl daemon-reload
  run systemctl start memfs@team-kb
  run systemctl status --no-pager memfs@team-kb
else
  echo "(systemd is not init here: running the unit's ExecStart with our own notify socket)"
  SOCK=$WORK/notify.sock
  python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
print("notify:", s.recv(4096).decode().replace("\n", " "), flush=True)
' "$SOCK" &
  LISTENER=$!
  while [ ! -S "$SOCK" ]; do sleep 0.01; done
  EXEC=$(sed -n 's/^ExecStart=//p' "$UNIT")
  CONFIG=$(sed -n 's/^Environment=MEMFS_CONFIG=//p' "$UNIT")
  echo "\$ env \$(cat /etc/memfs/mounts/team-kb.env) NOTIFY_SOCKET=... MEMFS_CONFIG=$CONFIG $EXEC"
  env $(grep -v '^#' /etc/memfs/mounts/team-kb.env) NOTIFY_SOCKET="$SOCK" MEMFS_CONFIG="$CONFIG" \
    $EXEC 2>"$WORK/unit.log" &
  DAEMON=$!
  wait "$LISTENER"
fi

echo; echo "== a mount from an fstab line"
echo "memfs#team-kb,demo-user:ro $M2 fuse.memfs agent=reviewer,session=fstab,user=demo,_netdev,noauto 0 0" >>/etc/fstab
run tail -1 /etc/fstab
run mount "$M2"
run grep " $M2 " /proc/self/mounts

echo; echo "== agents at work"
for i in 1 2 3 4 5; do echo "fact $i" >"$M1/team-kb/preferences/facts.md"; done
sleep 0.2   # another mount sees a change within a commit interval and a feed poll
run cat "$M2/team-kb/preferences/facts.md"
run ls "$M2"
run memfsctl history team-kb/preferences/facts.md

echo; echo "== Prometheus scrape"
get() { python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' "$1"; }
run get http://127.0.0.1:19464/readyz
echo '$ get http://127.0.0.1:19464/metrics | grep ...'
get http://127.0.0.1:19464/metrics | grep -E '^memfs_(fuse_requests_total\{op="create"\}|fuse_errors_total|batch_commits_total|versions|chunks|database_bytes|build_info)' | sed 's/^/  /'

echo; echo "== retention (keep_versions = 2) after the grace period"
sleep 3.5
run memfsctl gc --dry-run
run memfsctl gc
run memfsctl history team-kb/preferences/facts.md

echo; echo "== backup while mounted, restore, check"
run memfsctl backup "$WORK/memfs.bak"
run memfsctl restore "$WORK/memfs.bak" --db "$WORK/restored.db"
run memfsctl --db "$WORK/restored.db" fsck
run memfsctl --db "$WORK/restored.db" audit verify
run memfsctl --db "$WORK/restored.db" cat team-kb/preferences/facts.md

echo; echo "== stop"
run umount "$M2"
if [ -n "$DAEMON" ]; then
  echo "\$ kill -TERM $DAEMON   # systemctl stop"
  kill -TERM "$DAEMON"
  wait "$DAEMON"
  DAEMON=
fi
echo "daemon exited; mounts left: $(grep -c " fuse" /proc/self/mounts || true)"
