#!/usr/bin/env bash
# Runs every test: core tests on an in-memory database and real FUSE mounts
# (needs root and /dev/fuse). Installs missing system packages first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo test --all-targets "$@"
