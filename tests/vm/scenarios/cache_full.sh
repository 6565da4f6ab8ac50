# A cache whose filesystem runs out of room: cachefiles refuses writes below its
# stop limit (3% free), and its daemon must cull what no image uses
# (supervisor/cache_cull.h). img_big is read whole and unmounted, so its cache file
# is no image's; a filler takes the cache disk to 5% free, below the cull limit
# (7%): the supervisor culls img_big's file, oldest first, back to the run limit
# (10%), and img_a, read whole afterwards, reads right. Without culling its reads
# would cross the stop limit after some 20 MiB and fail with EIO.
. /cfs/lib.sh

# Free space of /cache as cachefiles counts it (blocks available to unprivileged
# users), in KiB, and the filesystem's size.
avail_kib() { df -k /cache | awk 'NR == 2 { print $4 }'; }
total_kib() { df -k /cache | awk 'NR == 2 { print $2 }'; }
free_percent() { echo $(( $(avail_kib) * 100 / $(total_kib) )); }

step "start; read img_big whole, then unmount it"
CFS_LOG_LEVEL=info
start_supervisor 1
mount_erofs /mnt/big fsid=img_big
check_manifest /mnt/big "$CFS_MANIFESTS/img_big.sha256"
umount_bounded /mnt/big
log "cache disk: $(avail_kib) KiB available of $(total_kib) KiB ($(free_percent)% free)"

step "a filler takes the cache disk to 5% free"
filler_mib=$(( ($(avail_kib) - $(total_kib) * 5 / 100) / 1024 ))
[ "$filler_mib" -gt 0 ] || fail "the cache disk has less than 5% free already"
dd if=/dev/zero of=/cache/filler bs=1M count="$filler_mib" conv=fsync 2> /dev/null || fail "writing the filler"
log "filler of $filler_mib MiB: $(free_percent)% free"
# (Not checked here: the supervisor may cull before this line runs. Its log line
# below says the cache was under 7% free.)

step "the supervisor culls img_big's cache file, back to 10% free"
culled() { grep -q 'had less than 7% free: culled [1-9][0-9]* cache file' "$CFS_LOG"; }
wait_for 20 culled || fail "nothing culled 20 s after the cache went below 7% free: $(tail -n 5 "$CFS_LOG")"
grep 'culled' "$CFS_LOG" | sed 's/^/CFS-INFO: /'
[ "$(free_percent)" -ge 10 ] || fail "only $(free_percent)% free after culling, below the run limit"

step "img_a reads whole, with no error"
mount_erofs /mnt/a fsid=img_a
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
log "after img_a: $(free_percent)% free"
umount_bounded /mnt/a
rm -f /cache/filler
require_alive
stop_supervisor 30
