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

# The main archive's URI from the machine's configuration (deb822 or one-line form);
# security and third-party archives are skipped.
mirror_uri() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f"
    done
}
uri=$(mirror_uri | grep -v -e security -e snapshot | grep '/debian/*$' | head -n1 || true)
if [[ -z "$uri" ]]; then
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
apt-get "${apt_opts[@]}" -q update >&2
(cd "$cache/debs" && apt-get "${apt_opts[@]}" -q download "$pkg" >&2)
ls "$cache"/debs/${pkg}_*.deb | sort -V | tail -n1
