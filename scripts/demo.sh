#!/usr/bin/env bash
# Set up, build, and mount a demo memory store (foreground; Ctrl-C unmounts).
#   MOUNT (default /mnt/memory)  DATA (default ./demo-data)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release --bins
bin=$PWD/target/release

MOUNT=${MOUNT:-/mnt/memory}
DATA=${DATA:-$PWD/demo-data}
export MEMFS_CONFIG=$PWD/memfs.toml
export MEMFS_DB=$DATA/memfs.db

"$bin/memfs" init
if "$bin/memfs" umount "$MOUNT" 2>/dev/null; then
  echo "demo: cleaned up an earlier mount at $MOUNT" >&2
fi

cat >&2 <<MSG

demo: mounting the stores of $MEMFS_DB at $MOUNT as agent 'demo-agent', user 'demo'.
      In another shell try:
        echo "the deploy key rotates on Fridays" >> $MOUNT/team-kb/facts.md
        grep -r deploy $MOUNT/
        MEMFS_DB=$MEMFS_DB $bin/memfsctl log
      Stop with Ctrl-C (or: $bin/memfs umount $MOUNT).

MSG
exec "$bin/memfs" mount "$MOUNT" --agent demo-agent --session "demo-$(date +%s)" --user demo
