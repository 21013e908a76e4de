#!/usr/bin/env bash
# Writes the man pages of memfs and memfsctl (one per subcommand: memfs-mount.1,
# memfsctl-gc.1, ...) into DIR (default target/man), generated from the clap
# definitions, so they never disagree with --help.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-target/man}
BIN=${BIN:-}
if [ -z "$BIN" ]; then
  cargo build -q --bins
  BIN=target/debug
fi
"$BIN/memfs" man "$DIR"
"$BIN/memfsctl" man "$DIR"
