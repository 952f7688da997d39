#!/bin/sh
# Fetches Debian trixie's systemd-boot-efi (the systemd 257 stub) without touching the host's
# apt configuration or installed packages (scripts/fetch-debian-package.sh does the private
# download) and makes it available as .cache/trixie-stub/. Prints the stub's path.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STUB="$ROOT/.cache/trixie-stub/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
[ -f "$STUB" ] && { echo "$STUB"; exit 0; }
PKG=$(sh "$ROOT/scripts/fetch-debian-package.sh" trixie systemd-boot-efi | tail -n1)
[ -f "$PKG/usr/lib/systemd/boot/efi/linuxx64.efi.stub" ] || { echo "no stub in $PKG" >&2; exit 1; }
# Replaced in one rename, so a reader never sees the link missing.
ln -sfn "$PKG" "$ROOT/.cache/trixie-stub.tmp.$$"
mv -T "$ROOT/.cache/trixie-stub.tmp.$$" "$ROOT/.cache/trixie-stub"
echo "$STUB"
