#!/usr/bin/env bash
# Runs every test: core tests on an in-memory database, real FUSE mounts
# (needs root and /dev/fuse), then the Python suites that drive a real
# `memfs serve` and real mounts with the official clients. Installs missing
# system packages and the pinned Python clients first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo test --all-targets "$@"
venv=$(scripts/pyenv.sh)
cargo build --bins
MEMFS_BIN_DIR="$PWD/target/debug" "$venv/bin/pytest" -q -p no:cacheprovider tests/python
