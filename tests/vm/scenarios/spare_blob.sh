# A spare opens an object's local blob as the object is handed to it, before any
# failover: the READs after the serving worker dies find the blob open. Shown by
# taking the blob out of the blob directory first: only a blob opened ahead can
# still serve the image, and every byte must read right.
. /cfs/lib.sh

# A blob directory the scenario can change: on the cache disk.
CFS_BLOBS=/cache/blobs
mkdir -p "$CFS_BLOBS"
cp /data/blobs/img_big "$CFS_BLOBS/" || fail "copying blob img_big"
# The worker writes only the ranges the kernel asks for, so the image is still
# mostly unread when the worker is killed.
CFS_READ_AHEAD_KIB=0

step "start the supervisor: 1 worker and a spare"
start_supervisor 1
step "mount img_big and read its first 4 KiB"
mount_erofs /mnt/big fsid=img_big
head -c 4096 /mnt/big/big128 > /dev/null || fail "reading the first 4 KiB of img_big"

step "the spare opens img_big's blob as it is handed the object"
opened_ahead() { daemon_log | grep -q 'blob "img_big" opened ahead of need'; }
wait_for 10 opened_ahead || fail "no worker logged 'blob \"img_big\" opened ahead of need'"
log "$(daemon_log | grep 'opened ahead of need' | head -n 1)"

step "the blob leaves the directory, then the serving worker is killed"
mv "$CFS_BLOBS/img_big" /cache/img_big.away || fail "moving the blob away"
victim=$(serving_worker_pid)
[ -n "$victim" ] || fail "no serving worker"
kill -KILL "$victim"
wait_for 10 pid_gone "$victim" || fail "worker pid $victim did not die"
taken_over() { [ -n "$(serving_worker_pid)" ] && [ "$(serving_worker_pid)" != "$victim" ]; }
wait_for 10 taken_over || fail "no worker took over from pid $victim"

step "all of img_big reads right through the spare that took over"
check_manifest /mnt/big "$CFS_MANIFESTS/img_big.sha256"
answered() { daemon_log | grep -q 'answered the first READ'; }
wait_for 10 answered || fail "the supervisor logged no failover's first READ answered"
log "$(daemon_log | grep 'answered the first READ' | head -n 1)"
! daemon_log | grep -q 'cannot be read by this worker' || fail "a worker could not open the blob: $(daemon_log | grep 'cannot be read by this worker' | head -n 1)"
require_alive
umount_bounded /mnt/big
