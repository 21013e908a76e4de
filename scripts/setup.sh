#!/usr/bin/env bash
# Installs what memfs and its tests need on a fresh Debian machine (run as root):
# fuse3 (fusermount3), git, python3, tar and jq (used by the real-mount tests),
# mount and unshare (the fstab helper test), systemd (systemd-analyze verify of
# the unit files; on a host without systemd as init it is only used offline),
# and chromium (the console's browser tests drive Debian's, headless).
# Safe to run again: it installs only what is missing.
set -euo pipefail

need=()
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
command -v git >/dev/null 2>&1 || need+=(git)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v tar >/dev/null 2>&1 || need+=(tar)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v mount >/dev/null 2>&1 || need+=(mount)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# PostgreSQL (the second engine's tests) and the multi-host tests' tools.
# Debian must not create and start its default cluster: the tests run their own.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster *= *false' /etc/postgresql-common/createcluster.conf 2>/dev/null \
    || printf 'create_main_cluster = false\n' >>/etc/postgresql-common/createcluster.conf
fi
command -v faketime >/dev/null 2>&1 || need+=(faketime)
command -v ip >/dev/null 2>&1 || need+=(iproute2)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install: ${need[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Debian's chromium for the console's browser tests (Playwright is pointed at
# /usr/bin/chromium; it never downloads a browser of its own).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install chromium" >&2
    exit 1
  fi
  echo "setup: installing chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo (Rust) is required; install a stable Rust toolchain first" >&2
  exit 1
fi
if [ ! -e /dev/fuse ]; then
  modprobe fuse 2>/dev/null || true
  [ -e /dev/fuse ] || { echo "setup: /dev/fuse is missing (load the fuse module)" >&2; exit 1; }
fi
