# shellcheck shell=bash
# Sourced (bash) by the scripts that download from Debian (fetch-kernel-source.sh,
# build-rootfs.sh). The mirror is whatever this machine's apt is already configured
# with, read at run time, so that no mirror host is ever written into the tree, and
# CI machines use their own nearby mirror.

# The main archive URIs from the machine's configuration (deb822 or one-line form).
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

# Prints the one Debian archive to use; security and snapshot archives and
# third-party repositories are skipped (they do not carry the full suites).
# Returns 1, printing nothing, if there is none.
debian_mirror() {
    local uri
    uri=$(mirror_uri | grep -v -e security -e snapshot | grep '/debian/*$' | head -n1 || true)
    [[ -n "$uri" ]] || return 1
    echo "$uri"
}

# The host name in a mirror URI ("http://user@host:port/path" -> "host").
mirror_host() {
    local host=${1#*://}
    host=${host%%/*}
    host=${host##*@}
    echo "${host%%:*}"
}

# Filter for the output of tools given the mirror (debootstrap, apt): replaces the
# mirror's host with "<mirror>", so that logs (ctest keeps them in files) never
# carry the host name.
#   usage: some-command 2>&1 | hide_mirror "$uri"
hide_mirror() {
    sed -u "s/$(mirror_host "$1" | sed 's/[][\\.*^$/]/\\&/g')/<mirror>/g"
}
