#!/bin/sh
# Fetches mkosi 24 from bookworm-backports and unpacks it into .cache/mkosi-24, without
# touching the host's apt configuration or packages (installing it would pull ~300 trixie
# packages into a Debian 12 host). Uses a private apt state under .cache/apt-bpo.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.cache/mkosi-24"
[ -x "$dest/usr/bin/mkosi" ] || [ -d "$dest/usr/lib/python3/dist-packages/mkosi" ] && { echo "$dest"; exit 0; }
apt="$root/.cache/apt-bpo"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc"
echo "deb http://deb.debian.org/debian bookworm-backports main" > "$apt/etc/sources.list"
opts="-o Dir::Etc::SourceList=$apt/etc/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$apt/lists -o Dir::Cache=$apt/cache -o Debug::NoLocking=1 -o APT::Sandbox::User=root"
# shellcheck disable=SC2086
apt-get -q $opts update >&2
cd "$apt"
# shellcheck disable=SC2086
apt-get -q $opts download mkosi >&2
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
dpkg-deb -x "$apt"/mkosi_24*_all.deb "$dest.tmp"
mv "$dest.tmp" "$dest"
echo "$dest"
