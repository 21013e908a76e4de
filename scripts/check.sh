#!/usr/bin/env bash
# The one check: formatting, clippy with warnings denied, then all tests.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
scripts/test.sh "$@"
