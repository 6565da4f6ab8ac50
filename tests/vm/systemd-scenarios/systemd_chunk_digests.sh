# Issue 7: chunk digests (worker/chunk_manifest.h, worker/chunk_verified_source.h).
# nginx serves img_chk, a copy of img_big with one byte changed in its 1 MiB chunk 64;
# the operator's manifest in blobs.dir (img_chk.chunks, made with split and sha256sum
# from the right blob) lists the right digests. img_big itself is served unchanged,
# without a manifest, as the reference.
# - Reads of other chunks (at 8 MiB and 100 MiB of the file) succeed and are right.
# - A read of the bad chunk fails with EIO, quickly; the journal names the blob, the
#   chunk, its offsets and both digests; status counts a failed fetch.
# - nginx's copy is repaired: without a remount, the same read now gives the right
#   bytes, and then every byte of the file is right. So the bad bytes never reached
#   the cache file (the kernel asked again, which it only does for a hole).
. /usr/lib/cfs-tests/systemd-lib.sh

www=/srv/cfs-www
port=8080
url="http://localhost:$port/blobs/"
chunk=1048576
bad_chunk=64
# The changed byte: in the middle of chunk 64 of the image.
bad_at=$((bad_chunk * chunk + chunk / 2))

step "nginx serves img_chk (img_big with a byte changed in chunk $bad_chunk) and img_big"
mkdir -p "$www/blobs"
avail=$(df -k --output=avail /srv | tail -n 1)
[ "$avail" -gt 200000 ] || fail "only ${avail} KiB free under /srv for a copy of img_big"
cp /data/blobs/img_big "$www/blobs/img_chk.bad"
orig=$(dd if=/data/blobs/img_big bs=1 skip="$bad_at" count=1 status=none | od -An -tx1 | tr -d ' ')
if [ "$orig" = 58 ]; then flip='Y'; else flip='X'; fi
printf '%s' "$flip" | dd of="$www/blobs/img_chk.bad" bs=1 seek="$bad_at" conv=notrunc status=none
cmp -s /data/blobs/img_big "$www/blobs/img_chk.bad" && fail "the copy of img_big was not changed"
ln -s img_chk.bad "$www/blobs/img_chk"
ln -s /data/blobs/img_big "$www/blobs/img_big"
serve_directory "$port" "$www"

step "the operator's chunk manifest for img_chk in blobs.dir"
allow_network
write_remote_config "$url"
mkdir -p "$CFS_BLOBS"
[ -z "$(ls -A "$CFS_BLOBS")" ] || fail "$CFS_BLOBS is not empty"
man="$CFS_BLOBS/img_chk.chunks"
{
    echo "cfs-chunks 1"
    echo "chunk_size $chunk"
    echo "size $(stat -c %s /data/blobs/img_big)"
    split -b "$chunk" --filter=sha256sum /data/blobs/img_big
} > "$man"
chmod 644 "$man"
good_digest=$(dd if=/data/blobs/img_big bs="$chunk" skip="$bad_chunk" count=1 status=none | sha256sum | cut -d' ' -f1)
bad_digest=$(dd if="$www/blobs/img_chk.bad" bs="$chunk" skip="$bad_chunk" count=1 status=none | sha256sum | cut -d' ' -f1)
[ "$(sed -n "$((bad_chunk + 4))p" "$man" | cut -d' ' -f1)" = "$good_digest" ] \
    || fail "line $((bad_chunk + 4)) of $man is not chunk $bad_chunk's digest"
log "manifest: $(wc -l < "$man") lines; chunk $bad_chunk is $good_digest, nginx serves $bad_digest"
systemd_start_supervisor
fails0=$(failed_fetches)

step "img_chk (checked by chunks) and img_big (the reference) mounted through HTTP"
mount_erofs /mnt/chk fsid=img_chk
mount_erofs /mnt/ref fsid=img_big
file=/mnt/chk/big128
ref=/mnt/ref/big128
daemon_log | grep -q "blob img_chk: checked by chunks of $chunk bytes against img_chk.chunks" \
    || unit_fail "the worker did not say it checks img_chk by chunks"

step "reads of other chunks succeed and are right"
# File offsets in MiB; the file's data starts within the image's first MiB, so these
# stay far from chunk $bad_chunk (and the read-ahead after them does too).
for mib in 8 100; do
    dd if="$file" of=/tmp/chk.bin bs="$chunk" skip="$mib" count=1 status=none \
        || fail "reading 1 MiB of $file at $mib MiB failed"
    dd if="$ref" of=/tmp/ref.bin bs="$chunk" skip="$mib" count=1 status=none \
        || fail "reading 1 MiB of $ref at $mib MiB failed"
    [ "$(stat -c %s /tmp/chk.bin)" -eq "$chunk" ] || fail "short read of $file at $mib MiB"
    cmp /tmp/chk.bin /tmp/ref.bin || fail "$file at $mib MiB differs from the reference"
    log "1 MiB at $mib MiB right"
done

step "a read of the bad chunk fails with EIO, quickly"
# 4 KiB at file offset 64 MiB + 256 KiB: image offset 64 MiB + 256 KiB + (where the
# file's data starts, under 768 KiB), so inside image chunk 64.
bad_block=$(((bad_chunk * chunk + chunk / 4) / 4096))
read_bad() { timeout -s KILL 30 dd if="$file" of=/dev/null bs=4096 skip="$bad_block" count=1 status=none; }
t0=$(now_cs)
st=0
read_bad 2> /tmp/bad.err || st=$?
log "reading block $bad_block: status $st after $(elapsed "$t0")s: $(cat /tmp/bad.err)"
[ "$st" -ne 0 ] || fail "reading the bad chunk succeeded"
[ "$st" -ne 137 ] || fail "reading the bad chunk hung"
grep -q 'Input/output error' /tmp/bad.err || fail "reading the bad chunk did not fail with EIO: $(cat /tmp/bad.err)"
bad_logged() {
    daemon_log | grep -q "blob img_chk chunk $bad_chunk (bytes $((bad_chunk * chunk))-$(((bad_chunk + 1) * chunk - 1))) failed verification: expected sha256:$good_digest, got sha256:$bad_digest"
}
wait_for 10 bad_logged || unit_fail "no journal line names blob, chunk, offsets and both digests"
daemon_log | grep -q "READ of object .*img_chk.* failed at offset" || unit_fail "no journal line says which READ failed"
fails1=$(failed_fetches)
log "failed fetches: $fails0 before, $fails1 after"
[ "$fails1" -gt "$fails0" ] || fail "status does not count the chunk that failed its digest"
# Still failing while nginx serves it wrong: it is fetched and checked again.
st=0
read_bad 2> /tmp/bad.err || st=$?
[ "$st" -ne 0 ] && grep -q 'Input/output error' /tmp/bad.err || fail "a second read of the bad chunk did not fail with EIO"
require_alive

step "nginx's copy repaired: the same read gives the right bytes, without a remount"
ln -sf /data/blobs/img_big "$www/blobs/img_chk"
read_bad > /dev/null 2> /tmp/bad.err || fail "the bad chunk still fails after the repair: $(cat /tmp/bad.err)"
dd if="$file" of=/tmp/chk.bin bs=4096 skip="$bad_block" count=1 status=none
dd if="$ref" of=/tmp/ref.bin bs=4096 skip="$bad_block" count=1 status=none
cmp /tmp/chk.bin /tmp/ref.bin || fail "chunk $bad_chunk reads wrong after the repair"
check_manifest /mnt/chk "$CFS_MANIFESTS/img_big.sha256"
log "every byte of img_chk right after the repair"
require_alive

step "clean up"
umount_bounded /mnt/ref
umount_bounded /mnt/chk
systemd_stop_supervisor
systemctl stop nginx
