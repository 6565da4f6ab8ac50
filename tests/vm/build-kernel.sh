#!/usr/bin/env bash
# Builds the test kernel (Debian's linux-source-6.12, tinyconfig + kernel.config) and
# caches the bzImage outside the work tree, keyed by the source package, the config
# fragment and this script. Prints the bzImage path.
#
# usage: build-kernel.sh [CACHE_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-${CFS_CACHE_DIR:-$HOME/.cache/cfsupervisor}}
mkdir -p "$cache"

deb=$("$here/fetch-kernel-source.sh" "$cache")
key=$( { basename "$deb"; cat "$here/kernel.config" "$0"; } | sha256sum | cut -c1-16)
out="$cache/kernel-$key"
if [[ -f "$out/bzImage" ]]; then echo "$out/bzImage"; exit 0; fi

work="$cache/kernel-build-$key"
rm -rf "$work" && mkdir -p "$work"
echo "build-kernel: unpacking $(basename "$deb")" >&2
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards '*/linux-source-6.12.tar.xz'
tar -xf "$work"/usr/src/linux-source-6.12.tar.xz -C "$work"
rm -rf "$work/usr"
src="$work/linux-source-6.12"

echo "build-kernel: configuring" >&2
make -C "$src" -s tinyconfig >&2
"$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$here/kernel.config" >&2
make -C "$src" -s olddefconfig >&2
# merge_config drops options whose dependencies are unmet without failing; catch that.
missing=0
while IFS= read -r line; do
    [[ "$line" =~ ^(CONFIG_[A-Z0-9_]+)=y$ ]] || continue
    if ! grep -qx "${BASH_REMATCH[1]}=y" "$src/.config"; then
        echo "build-kernel: ${BASH_REMATCH[1]} did not survive config resolution" >&2
        missing=1
    fi
done < "$here/kernel.config"
(( missing == 0 )) || exit 1

echo "build-kernel: compiling on $(nproc) cores" >&2
make -C "$src" -s -j"$(nproc)" bzImage >&2
mkdir -p "$out.tmp"
cp "$src/arch/x86/boot/bzImage" "$src/.config" "$out.tmp/"
rm -rf "$out" && mv "$out.tmp" "$out"
rm -rf "$work"
echo "$out/bzImage"
