#!/usr/bin/env bash
# An operator's first hour with memfs, end to end, as root: install, doctor,
# init, a mount started the way memfs@.service starts it (Type=notify), a mount
# from an fstab line, a Prometheus scrape, retention applied, a backup
# restored and checked. Prints each command and its output.
#
# It runs in a private mount namespace over overlays of /etc, /usr/sbin and
# /usr/local/bin, so this host is left as it was (nothing installed, fstab
# untouched). Where systemd is not init (containers, CI), the unit's ExecStart
# is run with a notify socket of our own, as systemd would run it.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WORK=$(mktemp -d /tmp/memfs-walkthrough.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

scripts/setup.sh
DESTDIR=$WORK/root scripts/install.sh >/dev/null
echo "== installed into a staging root; entering a private mount namespace"
unshare --mount --propagation private bash "$REPO/scripts/operator_walkthrough_inner.sh" "$WORK" "$REPO"
