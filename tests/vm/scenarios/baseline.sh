# Reference run WITHOUT the daemon: checks the kernel features the other scenarios
# need and verifies the test data through loop devices (erofs block-device mode),
# so a failure of a daemon scenario cannot be blamed on the images, the manifests
# or the helpers. Also measures plain read speed of the 64 MiB file under TCG.
. /cfs/lib.sh

step "kernel features"
check_kernel
n=$(grep -c '^processor' /proc/cpuinfo)
[ "$n" -eq 2 ] || fail "expected 2 CPUs (-smp 2), /proc/cpuinfo has $n"
grep -q ' /cache ext4 rw' /proc/mounts || fail "cache disk not mounted rw at /cache"
grep -q ' /data ext4 ro' /proc/mounts || fail "data disk not mounted ro at /data"
touch /cache/probe && rm /cache/probe || fail "cache disk not writable"

step "loop-mount img_a"
mkdir -p /mnt/a
mount -t erofs -o ro,loop "$CFS_BLOBS/img_a" /mnt/a || fail "loop mount of img_a failed"
t0=$(now_cs)
sha256sum "/mnt/a/$(cat "$CFS_EXPECT/img_a.big_file")" > /dev/null
echo "CFS-INFO: cold read + sha256 of the 64 MiB file from a loop device: $(elapsed "$t0")s"
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"

step "check_manifest detects wrong data, missing or extra files, wrong symlinks"
expect_check_failure() { # WHAT MANIFEST PATTERN
    rm -f /run/cfs-fail-reason
    if (check_manifest /mnt/a "$2") > /tmp/selftest.txt 2>&1; then
        fail "check_manifest accepted $1"
    fi
    grep -qF "$3" /run/cfs-fail-reason \
        || fail "check_manifest on $1 said '$(cat /run/cfs-fail-reason)', expected '$3'"
    log "check_manifest rejects $1: $(cat /run/cfs-fail-reason)"
    rm -f /run/cfs-fail-reason
}
m=$CFS_MANIFESTS/img_a.sha256
victim=$(sed -n '7p' "$m" | cut -c 67-)
sed '7s/^[0-9a-f]*/0000000000000000000000000000000000000000000000000000000000000000/' \
    "$m" > /tmp/bad_hash.sha256
cp "$CFS_MANIFESTS/img_a.symlinks" /tmp/bad_hash.symlinks
expect_check_failure "a wrong hash" /tmp/bad_hash.sha256 "first mismatch: $victim: FAILED"
sed '7d' "$m" > /tmp/extra_file.sha256
cp "$CFS_MANIFESTS/img_a.symlinks" /tmp/extra_file.symlinks
expect_check_failure "an unlisted file" /tmp/extra_file.sha256 "differ from extra_file.sha256: +$victim"
{ cat "$m"; echo "0000000000000000000000000000000000000000000000000000000000000000  no/such/file"; } \
    > /tmp/missing_file.sha256
cp "$CFS_MANIFESTS/img_a.symlinks" /tmp/missing_file.symlinks
expect_check_failure "a missing file" /tmp/missing_file.sha256 "first mismatch: no/such/file: FAILED"
cp "$m" /tmp/bad_link.sha256
sed '1s/\t.*/\t\/wrong\/target/' "$CFS_MANIFESTS/img_a.symlinks" > /tmp/bad_link.symlinks
expect_check_failure "a wrong symlink target" /tmp/bad_link.sha256 "expected '/wrong/target'"
sed '1d' "$CFS_MANIFESTS/img_a.symlinks" > /tmp/bad_link.symlinks
expect_check_failure "an unlisted symlink" /tmp/bad_link.sha256 "symlinks, bad_link.symlinks lists"

step "loop-mount img_b, img_multi, img_dom1, img_dom2"
mkdir -p /mnt/b /mnt/multi /mnt/dom1 /mnt/dom2
mount -t erofs -o ro,loop "$CFS_BLOBS/img_b" /mnt/b || fail "loop mount of img_b failed"
check_manifest /mnt/b "$CFS_MANIFESTS/img_b.sha256"
for d in img_multi_data img_dom_data; do
    losetup -f -r "$CFS_BLOBS/$d" || fail "losetup $d failed"
done
multi_dev=$(losetup -a | grep "img_multi_data" | cut -d: -f1)
dom_dev=$(losetup -a | grep "img_dom_data" | cut -d: -f1)
[ -b "$multi_dev" ] && [ -b "$dom_dev" ] || fail "no loop devices for the data blobs: '$multi_dev' '$dom_dev'"
mount -t erofs -o "ro,loop,device=$multi_dev" "$CFS_BLOBS/img_multi" /mnt/multi \
    || fail "loop mount of img_multi with device=$multi_dev failed"
check_manifest /mnt/multi "$CFS_MANIFESTS/img_multi.sha256"
mount -t erofs -o "ro,loop,device=$dom_dev" "$CFS_BLOBS/img_dom1" /mnt/dom1 \
    || fail "loop mount of img_dom1 failed"
mount -t erofs -o "ro,loop,device=$dom_dev" "$CFS_BLOBS/img_dom2" /mnt/dom2 \
    || fail "loop mount of img_dom2 failed"
check_manifest /mnt/dom1 "$CFS_MANIFESTS/img_dom1.sha256"
check_manifest /mnt/dom2 "$CFS_MANIFESTS/img_dom2.sha256"

step "loop-mount img_trunc"
mkdir -p /mnt/trunc
mount -t erofs -o ro,loop "$CFS_BLOBS/img_trunc" /mnt/trunc || fail "loop mount of img_trunc failed"
check_manifest /mnt/trunc "$CFS_MANIFESTS/img_trunc.sha256" partial
f=$(head -n 1 "$CFS_EXPECT/img_trunc.missing")
run_bounded 60 /tmp/trunc_cat.out /tmp/trunc_cat.err cat "/mnt/trunc/$f"
echo "CFS-INFO: loop device, cat of truncated $f: status $RB_STATUS after ${RB_SECONDS}s, $(wc -c < /tmp/trunc_cat.out) bytes, stderr: $(head -n 1 /tmp/trunc_cat.err)"
[ "$RB_TIMED_OUT" -eq 0 ] || fail "cat of truncated $f hung"
[ "$RB_STATUS" -ne 0 ] || fail "cat of truncated $f on a loop device succeeded"
log "baseline done"
