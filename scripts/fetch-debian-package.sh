#!/bin/sh
# Fetches one Debian package from SUITE (trixie, sid, ...) and unpacks it into
# .cache/debian/SUITE/PACKAGE/ without touching the host's apt configuration, package lists
# or installed packages: apt runs with a private sources list, lists dir and cache, and only
# downloads the .deb. Prints the unpacked folder. Used for real outside data the tests read
# (event logs, SNP reports, certificates shipped in Debian's Go packages) and for tools the
# host's Debian 12 lacks (cosign, virt-firmware); nothing is installed into the host.
#   sh scripts/fetch-debian-package.sh sid golang-github-google-go-eventlog-dev
set -eu
[ $# -eq 2 ] || { echo "usage: $0 SUITE PACKAGE" >&2; exit 2; }
SUITE=$1 PKG=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/.cache/debian/$SUITE/$PKG"
[ -f "$OUT/.complete" ] && { echo "$OUT"; exit 0; }
# Test files run in parallel and may all ask at once: one fetches, the others wait for it.
mkdir -p "$ROOT/.cache/debian"
exec 9>"$ROOT/.cache/debian/$SUITE.lock"
flock 9
[ -f "$OUT/.complete" ] && { echo "$OUT"; exit 0; }

APT="$ROOT/.cache/debian/apt-$SUITE"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/etc/preferences.d" "$APT/deb"
echo "deb http://deb.debian.org/debian $SUITE main" > "$APT/sources.list"
set -- -o Dir::Etc::SourceList="$APT/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
  -o Dir::Etc::Preferences=/nonexistent -o Dir::Etc::PreferencesParts="$APT/etc/preferences.d" \
  -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
  -o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1 -o Acquire::Languages=none -o APT::Sandbox::User=root
# One package list per suite per hour is enough.
if [ -z "$(find "$APT/lists" -maxdepth 1 -name '*Packages*' -mmin -60 2>/dev/null | head -n1)" ]; then
  apt-get "$@" -qq update >&2
fi
rm -f "$APT/deb/${PKG}_"*.deb
# apt-get download writes into the current directory
(cd "$APT/deb" && apt-get "$@" -qq download "$PKG" >&2)
DEB=$(ls "$APT/deb/${PKG}_"*.deb | head -n1)
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
dpkg-deb -x "$DEB" "$OUT.tmp"
basename "$DEB" > "$OUT.tmp/.deb-name"
sha256sum "$DEB" | cut -d' ' -f1 > "$OUT.tmp/.deb-sha256"
touch "$OUT.tmp/.complete"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
echo "$OUT"
