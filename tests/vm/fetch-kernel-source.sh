#!/usr/bin/env bash
# Downloads Debian trixie's linux-source-6.12 .deb into a cache directory, using a
# private apt configuration. The mirror is whatever this machine's apt is already
# configured with (read from its sources at run time), so no mirror host is named
# here and the system's own apt state is never touched.
#
# usage: fetch-kernel-source.sh CACHE_DIR   -> prints the path of the .deb
set -euo pipefail
cache=${1:?usage: fetch-kernel-source.sh CACHE_DIR}
suite=trixie
pkg=linux-source-6.12

existing=$(ls "$cache"/debs/${pkg}_*.deb 2>/dev/null | sort -V | tail -n1 || true)
if [[ -n "$existing" ]]; then echo "$existing"; exit 0; fi

# The mirror comes from this machine's apt sources (apt-mirror.sh).
. "$(dirname "$0")/apt-mirror.sh"
if ! uri=$(debian_mirror); then
    echo "fetch-kernel-source: no Debian archive found in this machine's apt sources" >&2
    exit 1
fi

apt_root="$cache/apt-$suite"
mkdir -p "$apt_root"/{etc,state/lists/partial,cache/archives/partial} "$cache/debs"
cat > "$apt_root/etc/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main
SRC
apt_opts=(
    -o Dir::Etc::SourceList="$apt_root/etc/sources.list"
    -o Dir::Etc::SourceParts=/dev/null
    -o Dir::State="$apt_root/state"
    -o Dir::State::status=/dev/null
    -o Dir::Cache="$apt_root/cache"
    -o APT::Architecture=amd64
    -o Debug::NoLocking=1
    -o APT::Sandbox::User=root
)
# apt names the mirror in its progress lines; those end up in ctest's log files.
apt-get "${apt_opts[@]}" -q update 2>&1 | hide_mirror "$uri" >&2
(cd "$cache/debs" && apt-get "${apt_opts[@]}" -q download "$pkg" 2>&1 | hide_mirror "$uri" >&2)
ls "$cache"/debs/${pkg}_*.deb | sort -V | tail -n1
