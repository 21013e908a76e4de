#!/usr/bin/env bash
# The randomized multi-mount checker (tests/torture.rs) for as long as asked:
# PROCS worker processes across MOUNTS mounts (one daemon each, one database) run
# seeded random agent operations for DURATION seconds, then every invariant is
# checked. A failure prints the line that replays its seed.
#
#   DURATION=600 PROCS=6 MOUNTS=2 scripts/torture.sh
#   SEED=1234 scripts/torture.sh          # replay a seed (same operation sequences)
#   RUNS=5 DURATION=60 scripts/torture.sh # five seeds one after another
#
# Defaults: DURATION=60 PROCS=6 MOUNTS=2, a fresh SEED per run. Needs root and
# /dev/fuse; builds in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DURATION=${DURATION:-60}
PROCS=${PROCS:-6}
MOUNTS=${MOUNTS:-2}
RUNS=${RUNS:-1}
cargo test --release --test torture --no-run -q
for run in $(seq 1 "$RUNS"); do
  seed=${SEED:-$(date +%s)-$run}
  echo "torture: run $run of $RUNS: SEED=$seed DURATION=$DURATION PROCS=$PROCS MOUNTS=$MOUNTS" >&2
  MEMFS_TORTURE_SEED=$seed MEMFS_TORTURE_DURATION=$DURATION MEMFS_TORTURE_PROCS=$PROCS \
    MEMFS_TORTURE_MOUNTS=$MOUNTS cargo test --release -q --test torture -- --nocapture
done
