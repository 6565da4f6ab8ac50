# A cache that fills faster than the supervisor looks (once a second): img_big is
# read whole and unmounted, so its cache file is no image's; img_a is mounted; then
# a filler takes the cache disk to 1% free at once (fallocate), below the kernel's
# stop limit (3%), so img_a's first cache-file writes are refused (ENOBUFS). Each
# such READ's write waits for the supervisor's cull and tries again
# (worker/request_handler.h, kCacheRoomWait): img_a reads whole and right, with no
# EIO. Before that wait, the first READ failed at once and the reader got EIO.
# (The supervisor is stopped for the fill and the first READs: its check could
# otherwise cull first.)
. /cfs/lib.sh

step "start the supervisor"
CFS_LOG_LEVEL=info
start_supervisor 1

step "read img_big whole, then unmount it; mount img_a"
mount_erofs /mnt/big fsid=img_big
check_manifest /mnt/big "$CFS_MANIFESTS/img_big.sha256"
umount_bounded /mnt/big
mount_erofs /mnt/a fsid=img_a
log "cache disk: $(cache_free_percent)% free"

step "the cache disk goes to 1% free at once, and img_a reads whole, with no error"
# The supervisor is stopped from before the filler until img_a's reads have begun,
# so that its once-a-second look cannot cull in between (then no READ would wait,
# and this would test nothing).
kill -STOP "$CFS_SUP_PID"
fill_cache_at_once_to 1
( sleep 0.3; kill -CONT "$CFS_SUP_PID" ) &
resume=$!
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
wait "$resume"
log "after img_a: $(cache_free_percent)% free"
daemon_log | grep -E 'waited [0-9]+ ms for the supervisor to cull|culled' | sed 's/^/CFS-INFO: /'
daemon_log | grep -q 'waited [0-9]* ms for the supervisor to cull' \
    || fail "no READ waited for room: the test did not fill the cache before img_a's reads"
daemon_log | grep -q 'had less than 7% free: culled [1-9]' || fail "the supervisor culled nothing"
umount_bounded /mnt/a
rm -f /cache/filler
require_alive
stop_supervisor 30
