#!/usr/bin/env bash
# The benchmark's data disk: one erofs image, /blobs/bench, holding
#   big/file256m     256 MiB of pseudo-random bytes (sequential and random reads)
#   small/dNN/fNNNN  10,000 files of 1 to 16 KiB in 100 directories (first reads)
# and /expect/bench.sha256 for the big file. Cached in
# ${CFS_CACHE_DIR:-~/.cache/cfsupervisor}/bench-data-<hash of this script and the
# mkfs.erofs version>/data.img; prints its path.
#
# usage: make-bench-data.sh
set -euo pipefail
cache=${CFS_CACHE_DIR:-$HOME/.cache/cfsupervisor}
key=$( { cat "$0"; mkfs.erofs --help 2>&1 | head -n1 || true; } | sha256sum | cut -c1-16)
out="$cache/bench-data-$key"
if [[ -f "$out/data.img" ]]; then echo "$out/data.img"; exit 0; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cfs-bench-data.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/root/blobs" "$work/root/expect"
echo "make-bench-data: generating the source tree" >&2
python3 - "$work/src" <<'PYEOF'
import os, random, sys
src = sys.argv[1]
rng = random.Random(256)
os.makedirs(f"{src}/big")
with open(f"{src}/big/file256m", "wb") as f:
    for _ in range(256):
        f.write(rng.randbytes(1 << 20))
for i in range(10000):
    d = f"{src}/small/d{i // 100:02d}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i:04d}", "wb") as f:
        f.write(rng.randbytes(rng.randint(1024, 16384)))
PYEOF
echo "make-bench-data: mkfs.erofs" >&2
mkfs.erofs --quiet -T0 --all-root -Uc0ffee00-0000-4000-8000-0000000000be "$work/root/blobs/bench" "$work/src" >&2
(cd "$work/src" && sha256sum big/file256m) > "$work/root/expect/bench.sha256"
kib=$(du -sk --apparent-size "$work/root" | cut -f1)
mkdir -p "$out"
mkfs.ext4 -q -F -t ext4 -L cfsbench -b 4096 -m 0 -E root_owner=0:0 -d "$work/root" "$out/data.img.tmp" \
    "$(( kib * 5 / 4 + 32768 ))k" >&2
mv "$out/data.img.tmp" "$out/data.img"
echo "$out/data.img"
