#!/usr/bin/env bash
# Generates the data disk for the VM scenarios: source trees, erofs images made from
# them, manifests, and an ext4 image OUTDIR/data.img (mkfs.ext4 -d, no root needed)
# that the guest mounts read-only at /data:
#
#   /blobs/<name>            erofs images (fscache "fsid" blobs) and extra data blobs
#   /manifests/<name>.sha256    sha256sum lines, paths relative to the image root, for
#                               every regular file of the image's source tree
#   /manifests/<name>.symlinks  "<path>\t<readlink target>" for every symlink
#   /expect/...              facts the scenarios need (see the end of this script)
#
# Images:
#   img_a           the big mixed tree: empty/1/4095/4096/4097-byte files, a 64 MiB
#                   pseudo-random file, zero runs with islands of data (one written
#                   with holes), 2000 small files in one directory, 40 nested levels,
#                   symlinks (relative, absolute, dangling, a loop), a name with a space
#   img_b           a different small tree (second fsid)
#   img_big         one 128 MiB pseudo-random file (failover scenarios)
#   img_multi       bootstrap made with --blobdev=img_multi_data --chunksize=4096; all
#                   file data lives in the extra blob img_multi_data (-o device=...)
#   img_dom1/2      two bootstraps meant to be mounted with the same domain_id, sharing
#                   the one data blob img_dom_data (see the comment at build_dom)
#   img_trunc       a flat image cut to half its size; its manifest lists only the
#                   files whose data lies entirely before the cut, and
#                   /expect/img_trunc.missing the files entirely after it
#   missing blob    /expect/missing_blob_name names a blob that is NOT in /blobs
#
# The result is cached in OUTDIR keyed by a hash of this script and the mkfs.erofs
# version, so a re-run is instant.
#
# usage: make-test-data.sh OUTDIR
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)

key=$( { cat "$0"; mkfs.erofs --help 2>&1 | head -n1 || true; } | sha256sum | cut -c1-16)
if [[ -f "$out/data.img" && "$(cat "$out/data.key" 2>/dev/null)" == "$key" ]]; then
    echo "make-test-data: cached $out/data.img ($key)" >&2
    echo "$out/data.img"
    exit 0
fi

work="$out/data.work"
rm -rf "$work" "$out/data.img" "$out/data.key"
mkdir -p "$work/src" "$work/root/blobs" "$work/root/manifests" "$work/root/expect"
src="$work/src"
root="$work/root"
blobs="$root/blobs"

echo "make-test-data: generating source trees in $src" >&2
python3 - "$src" <<'PYEOF'
import hashlib, os, random, sys

src = sys.argv[1]

def rnd(seed, n):
    return random.Random(seed).randbytes(n)

def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)

def symlink(target, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)

# ---- img_a: the big mixed tree ----
a = os.path.join(src, "img_a")
write(f"{a}/empty", b"")
write(f"{a}/one_byte", b"x")
write(f"{a}/f4095", rnd("f4095", 4095))
write(f"{a}/f4096", rnd("f4096", 4096))
write(f"{a}/f4097", rnd("f4097", 4097))
write(f"{a}/name with space.txt", b"spaces are allowed in names\n")
write(f"{a}/big/random64m", rnd("random64m", 64 << 20))
# zero runs with islands of data, written out in full
isl = bytearray(12 << 20)
for i, off in enumerate([0, 4096 - 3, 1 << 20, (3 << 20) + 12345, 7 << 20,
                         (12 << 20) - 100]):
    d = rnd(f"island{i}", 100 + i * 997)
    isl[off:off + len(d)] = d[:len(isl) - off]
write(f"{a}/sparse/zeros_with_islands", bytes(isl))
# the same kind of content written with real holes
p = f"{a}/sparse/holes"
with open(p, "wb") as f:
    for i, off in enumerate([1 << 20, (5 << 20) + 777, 9 << 20]):
        f.seek(off)
        f.write(rnd(f"hole{i}", 5000 + i))
    f.truncate(10 << 20)
# many small files in one directory (a directory of many blocks)
r = random.Random("many")
for i in range(2000):
    n = r.choice([0, 1, 17, 100, 511, 1000, 2048, 3000, 4095, 4096, 4097, 6000])
    write(f"{a}/many/file{i:04d}", r.randbytes(n))
# deep directories: 40 levels, a file on every level
d = f"{a}/deep"
for lvl in range(1, 41):
    d = f"{d}/l{lvl:02d}"
    write(f"{d}/level", f"level {lvl}\n".encode())
write(f"{d}/leaf.bin", rnd("leaf", 10000))
symlink("../f4096", f"{a}/links/rel_file")
symlink("../deep/l01/l02", f"{a}/links/rel_dir")
symlink("/data/blobs/img_a", f"{a}/links/abs_file")
symlink("/no/such/target", f"{a}/links/abs_dangling")
symlink("missing_file", f"{a}/links/dangling")
symlink("loop_b", f"{a}/links/loop_a")
symlink("loop_a", f"{a}/links/loop_b")
symlink("links/rel_file", f"{a}/top_link")

# ---- img_b: a different small tree ----
b = os.path.join(src, "img_b")
write(f"{b}/hello.txt", b"hello from img_b\n")
write(f"{b}/data/blob.bin", rnd("img_b blob", 300 * 1024 + 5))
for i in range(20):
    write(f"{b}/data/small{i:02d}", rnd(f"img_b small {i}", 37 * i + 1))
symlink("hello.txt", f"{b}/hello_link")

# ---- img_big: one 128 MiB file, for the failover scenarios ----
write(f"{src}/img_big/big128", rnd("big128", 128 << 20))

# ---- img_multi: chunked, all data in the extra blob ----
m = os.path.join(src, "img_multi")
write(f"{m}/rand_4m", rnd("multi rand", 4 << 20))
write(f"{m}/copy_of_rand_4m", rnd("multi rand", 4 << 20))   # dedup'd chunks
write(f"{m}/zeros_1m", bytes(1 << 20))                       # one zero chunk
mixed = bytearray(3 << 20)
for i, off in enumerate([5, 1 << 20, (2 << 20) + 4095]):
    dd = rnd(f"multi island {i}", 9000)
    mixed[off:off + len(dd)] = dd
write(f"{m}/mixed_3m", bytes(mixed))
for n in (1, 4095, 4096, 4097, 10000):
    write(f"{m}/small/f{n}", rnd(f"multi small {n}", n))
for i in range(50):
    write(f"{m}/dir/f{i:02d}", rnd(f"multi dir {i}", 100 * i + 3))
symlink("rand_4m", f"{m}/link_to_rand")

# ---- img_dom1 / img_dom2: the same file data, different metadata ----
d1 = os.path.join(src, "img_dom1")
write(f"{d1}/a.bin", rnd("dom a", 200 * 1024))
write(f"{d1}/b.bin", rnd("dom b", 4096))
write(f"{d1}/sub/c.txt", b"shared domain data\n")
d2 = os.path.join(src, "img_dom2")
write(f"{d2}/a.bin", rnd("dom a", 200 * 1024))
write(f"{d2}/b.bin", rnd("dom b", 4096))
write(f"{d2}/sub/c.txt", b"shared domain data\n")
write(f"{d2}/only_in_dom2/copy_of_a.bin", rnd("dom a", 200 * 1024))
write(f"{d2}/only_in_dom2/empty", b"")
symlink("../sub/c.txt", f"{d2}/only_in_dom2/link_c")

# ---- img_trunc: flat files of whole blocks, so each file's data is contiguous ----
t = os.path.join(src, "img_trunc")
for i in range(24):
    write(f"{t}/f{i:02d}.bin", rnd(f"trunc {i}", 256 * 1024))
PYEOF

# Deterministic images: fixed timestamps, owners and UUIDs.
mkfs() { # OUT SRCDIR UUIDSUFFIX [extra mkfs.erofs options]
    local img=$1 dir=$2 u=$3
    shift 3
    mkfs.erofs --quiet -T0 --all-root -Uc0ffee00-0000-4000-8000-0000000000"$u" "$@" "$img" "$dir" >&2
}

echo "make-test-data: building erofs images" >&2
mkfs "$blobs/img_a" "$src/img_a" 0a
mkfs "$blobs/img_b" "$src/img_b" 0b
mkfs "$blobs/img_big" "$src/img_big" 0d
mkfs "$blobs/img_multi" "$src/img_multi" 0c --blobdev="$blobs/img_multi_data" --chunksize=4096

# Shared domain. mkfs.erofs 1.5 has no way to make an image reference chunks in an
# existing blob (no --blobdev reuse/dedupe across runs, no tag for the device slot:
# the slot's tag is left empty, so the mount must name the blob with -o device=).
# What it does do: --chunksize with --blobdev writes chunks in a deterministic
# order and dedups identical chunks. So img_dom1 and img_dom2 are built from trees
# with the same file data (img_dom2 only adds directories, a symlink, an empty file
# and a duplicate of an existing file, none of which add new chunks); their data
# blobs come out byte-identical (checked below), and only one copy is shipped as
# img_dom_data. Mounting both with
#   -o domain_id=D,fsid=img_dom1,device=img_dom_data
#   -o domain_id=D,fsid=img_dom2,device=img_dom_data
# makes the kernel share the single img_dom_data cookie inside domain D.
mkfs "$blobs/img_dom1" "$src/img_dom1" 0d --blobdev="$work/dom1_data" --chunksize=4096
mkfs "$blobs/img_dom2" "$src/img_dom2" 0e --blobdev="$work/dom2_data" --chunksize=4096
if ! cmp -s "$work/dom1_data" "$work/dom2_data"; then
    echo "make-test-data: img_dom1 and img_dom2 data blobs differ; cannot share them" >&2
    exit 1
fi
mv "$work/dom1_data" "$blobs/img_dom_data"

# Truncated blob: a flat image cut to half its size (rounded down to a block).
mkfs "$work/img_trunc_full" "$src/img_trunc" 0f
full=$(stat -c %s "$work/img_trunc_full")
cut=$(( full / 2 / 4096 * 4096 ))
head -c "$cut" "$work/img_trunc_full" > "$blobs/img_trunc"

echo "make-test-data: writing manifests" >&2
python3 - "$src" "$root" "$work/img_trunc_full" "$cut" <<'PYEOF'
import hashlib, os, sys

src, root, trunc_full, cut = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def walk(top):
    files, links = [], []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for n in sorted(filenames + [d for d in dirnames
                                     if os.path.islink(os.path.join(dirpath, d))]):
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, top)
            if os.path.islink(p):
                links.append((rel, os.readlink(p)))
            elif os.path.isfile(p):
                files.append(rel)
    return sorted(files), sorted(links)

def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()

def write_manifest(name, top, only=None):
    files, links = walk(top)
    if only is not None:
        files = [f for f in files if f in only]
    with open(f"{root}/manifests/{name}.sha256", "w") as m:
        for f in files:
            m.write(f"{sha(os.path.join(top, f))}  {f}\n")
    with open(f"{root}/manifests/{name}.symlinks", "w") as m:
        for p, t in links:
            m.write(f"{p}\t{t}\n")

for name in ("img_a", "img_b", "img_big", "img_multi", "img_dom1", "img_dom2"):
    write_manifest(name, os.path.join(src, name))

# img_trunc: find where each file's data sits in the full image.
img = open(trunc_full, "rb").read()
present, missing = set(), []
tsrc = os.path.join(src, "img_trunc")
for f in walk(tsrc)[0]:
    data = open(os.path.join(tsrc, f), "rb").read()
    off = img.find(data)
    if off < 0:
        sys.exit(f"img_trunc: data of {f} not found contiguous in the image")
    if off + len(data) <= cut:
        present.add(f)
    elif off >= cut:
        missing.append(f)
if len(present) < 4 or len(missing) < 4:
    sys.exit(f"img_trunc: too few files on each side of the cut "
             f"({len(present)} present, {len(missing)} missing)")
write_manifest("img_trunc", tsrc, only=present)
with open(f"{root}/expect/img_trunc.missing", "w") as m:
    for f in sorted(missing):
        m.write(f + "\n")
PYEOF

# Facts for the scenarios.
echo "img_absent" > "$root/expect/missing_blob_name"
[[ ! -e "$blobs/img_absent" ]]
echo "big/random64m" > "$root/expect/img_a.big_file"
stat -c %s "$work/img_trunc_full" > "$root/expect/img_trunc.full_size"
echo "$cut" > "$root/expect/img_trunc.size"
ls -l "$blobs" >&2

echo "make-test-data: building the ext4 data disk" >&2
kib=$(du -sk --apparent-size "$root" | cut -f1)
kib=$(( kib * 5 / 4 + 32768 ))
mkfs.ext4 -q -F -t ext4 -L cfsdata -b 4096 -m 0 -E root_owner=0:0 \
    -d "$root" "$out/data.img.tmp" "${kib}k" >&2
mv "$out/data.img.tmp" "$out/data.img"
# Keep small host-side copies of what the guest sees, for debugging.
rm -rf "$out/data.manifests" "$out/data.expect"
cp -r "$root/manifests" "$out/data.manifests"
cp -r "$root/expect" "$out/data.expect"
rm -rf "$work"
echo "$key" > "$out/data.key"
echo "$out/data.img"
