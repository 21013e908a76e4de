# Sourced by benchmarks (from the checkout's root): sets `bin` to the
# directory of the memfs binaries to run. That is $BIN_DIR when set (another
# build, to compare two builds on one machine state), else this checkout's
# release build, built first.
if [ -n "${BIN_DIR:-}" ]; then
  bin=$(cd "$BIN_DIR" && pwd)
else
  cargo build --release --bins -q
  bin=$PWD/target/release
fi
