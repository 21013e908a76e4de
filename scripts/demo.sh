#!/usr/bin/env bash
# Set up, build, serve the API and web console, and mount a demo memory store
# (foreground; Ctrl-C unmounts and stops the server).
#   MOUNT (default /mnt/memory)  DATA (default ./demo-data)  LISTEN (default 127.0.0.1:8420)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release --bins
bin=$PWD/target/release

MOUNT=${MOUNT:-/mnt/memory}
DATA=${DATA:-$PWD/demo-data}
LISTEN=${LISTEN:-127.0.0.1:8420}
export MEMFS_CONFIG=$PWD/memfs.toml
export MEMFS_DB=$DATA/memfs.db

"$bin/memfs" init
if "$bin/memfs" umount "$MOUNT" 2>/dev/null; then
  echo "demo: cleaned up an earlier mount at $MOUNT" >&2
fi

# The server prints a one-time sign-in URL for the console; keep its log.
log=$DATA/serve.log
"$bin/memfs" serve --listen "$LISTEN" 2>"$log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
url=
for _ in $(seq 1 200); do
  url=$(grep -o 'http://[^ ]*/console/signin?token=[0-9a-f]*' "$log" | head -1 || true)
  [ -n "$url" ] && break
  if ! kill -0 $server 2>/dev/null; then
    echo "demo: memfs serve did not start:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.05
done
[ -n "$url" ] || { echo "demo: memfs serve printed no console URL (see $log)" >&2; exit 1; }

cat >&2 <<MSG

demo: the web console: open
        $url
      (it signs you in once; for another link open http://$LISTEN/console/signin
      and look in $log)

demo: mounting the stores of $MEMFS_DB at $MOUNT as agent 'demo-agent', user 'demo'.
      In another shell try:
        echo "the deploy key rotates on Fridays" >> $MOUNT/team-kb/facts.md
        grep -r deploy $MOUNT/
        MEMFS_DB=$MEMFS_DB $bin/memfsctl log
      and watch the change arrive in the console.
      Stop with Ctrl-C (or: $bin/memfs umount $MOUNT).

MSG
"$bin/memfs" mount "$MOUNT" --agent demo-agent --session "demo-$(date +%s)" --user demo
