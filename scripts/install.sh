#!/usr/bin/env bash
# Installs memfs on this host (run as root): the binaries in $PREFIX/bin
# (default /usr/local), mount.fuse.memfs in /sbin (so fstab lines and
# `mount -t fuse.memfs` work), the systemd units, shell completions and man
# pages, and /etc/memfs with the example config if there is none.
# DESTDIR=/some/root installs under that root instead (packaging, tests).
#
# Then: edit /etc/memfs/memfs.toml, run `memfs doctor` and `memfs init`, and
# either write /etc/memfs/mounts/NAME.env and `systemctl enable --now
# memfs@NAME`, or add an fstab line such as
#   memfs#team-kb /mnt/memory fuse.memfs agent=planner,session=boot,_netdev 0 0
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}

scripts/setup.sh
cargo build --release -q
BIN=$DESTDIR$PREFIX/bin
install -D -m 0755 target/release/memfs "$BIN/memfs"
install -D -m 0755 target/release/memfsctl "$BIN/memfsctl"
install -d "$DESTDIR/sbin"
ln -sf "$PREFIX/bin/memfs" "$DESTDIR/sbin/mount.fuse.memfs"

install -d "$DESTDIR/etc/systemd/system"
for unit in contrib/systemd/*.service; do
  sed "s#/usr/local/bin/memfs#$PREFIX/bin/memfs#g" "$unit" \
    >"$DESTDIR/etc/systemd/system/$(basename "$unit")"
done
if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

install -d -m 0755 "$DESTDIR/etc/memfs/mounts" "$DESTDIR/var/lib/memfs"
[ -e "$DESTDIR/etc/memfs/memfs.toml" ] || install -m 0644 memfs.toml "$DESTDIR/etc/memfs/memfs.toml"

SHARE=$DESTDIR$PREFIX/share
install -d "$SHARE/bash-completion/completions" "$SHARE/zsh/site-functions" \
  "$SHARE/fish/vendor_completions.d"
for bin in memfs memfsctl; do
  "$BIN/$bin" completions bash >"$SHARE/bash-completion/completions/$bin"
  "$BIN/$bin" completions zsh >"$SHARE/zsh/site-functions/_$bin"
  "$BIN/$bin" completions fish >"$SHARE/fish/vendor_completions.d/$bin.fish"
done
BIN="$BIN" scripts/gen-man.sh "$SHARE/man/man1" >/dev/null
echo "installed memfs $("$BIN/memfs" --version | cut -d' ' -f2-) under ${DESTDIR:-/}$PREFIX; next: memfs doctor"
