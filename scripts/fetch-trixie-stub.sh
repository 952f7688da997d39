#!/bin/sh
# Fetches Debian trixie's systemd-boot-efi (the systemd 257 stub) into .cache/trixie-stub/
# without touching the host's apt configuration, package lists or installed packages:
# apt runs with a private sources list, lists dir and cache, and only downloads the .deb.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/.cache/trixie-stub"
STUB="$OUT/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
[ -f "$STUB" ] && { echo "$STUB"; exit 0; }
# Test files run in parallel and may all ask at once: one fetches, the others wait for it.
mkdir -p "$ROOT/.cache"
exec 9>"$ROOT/.cache/trixie-stub.lock"
flock 9
[ -f "$STUB" ] && { echo "$STUB"; exit 0; }

APT="$ROOT/.cache/trixie-apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/etc/preferences.d" "$APT/deb"
echo 'deb http://deb.debian.org/debian trixie main' > "$APT/sources.list"
set -- -o Dir::Etc::SourceList="$APT/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
  -o Dir::Etc::Preferences=/nonexistent -o Dir::Etc::PreferencesParts="$APT/etc/preferences.d" \
  -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
  -o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1 -o Acquire::Languages=none -o APT::Sandbox::User=root
apt-get "$@" -qq update >&2
# apt-get download writes into the current directory
(cd "$APT/deb" && apt-get "$@" -qq download systemd-boot-efi >&2)
DEB=$(ls "$APT"/deb/systemd-boot-efi_*.deb | head -n1)
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
dpkg-deb -x "$DEB" "$OUT.tmp"
[ -f "$OUT.tmp/usr/lib/systemd/boot/efi/linuxx64.efi.stub" ] || { echo "no stub in $DEB" >&2; exit 1; }
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
echo "$STUB"
