# A cache whose filesystem runs out of room: cachefiles refuses writes below its
# stop limit (3% free), and its daemon must cull what no image uses
# (supervisor/cache_cull.h). img_big is read whole and unmounted, so its cache file
# is no image's; a filler takes the cache disk to 5% free, below the cull limit
# (7%): the supervisor culls img_big's file, oldest first, back to the run limit
# (10%), and img_a, read whole afterwards, reads right. Without culling its reads
# would cross the stop limit after some 20 MiB and fail with EIO.
. /cfs/lib.sh

step "start; read img_big whole, then unmount it"
CFS_LOG_LEVEL=info
start_supervisor 1
mount_erofs /mnt/big fsid=img_big
check_manifest /mnt/big "$CFS_MANIFESTS/img_big.sha256"
umount_bounded /mnt/big
log "cache disk: $(cache_free_percent)% free"

step "a filler takes the cache disk to 5% free"
fill_cache_to 5

step "the supervisor culls img_big's cache file, back to 10% free"
expect_cull

step "img_a reads whole, with no error"
mount_erofs /mnt/a fsid=img_a
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
log "after img_a: $(cache_free_percent)% free"
umount_bounded /mnt/a
rm -f /cache/filler
require_alive
stop_supervisor 30
