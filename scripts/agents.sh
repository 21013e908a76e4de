#!/usr/bin/env bash
# Issue 12's reproduction as agents do it (tests/agents.rs), at full length: two
# mounts (two daemons) of one store, 3 processes in each, ROUNDS rounds of fresh
# lock files (`flock FILE true`), fresh logs (`echo line >> log`) and shared
# parents (`mkdir -p a/b/c`); then a counter incremented under `flock` by 2
# processes in each mount, INCREMENTS times each, from nothing.
#
#   scripts/agents.sh                 # ROUNDS=200 INCREMENTS=100
#
# Needs root and /dev/fuse; builds in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
MEMFS_AGENT_ROUNDS=${ROUNDS:-200} MEMFS_AGENT_INCREMENTS=${INCREMENTS:-100} \
  cargo test --release --test agents -- --nocapture
