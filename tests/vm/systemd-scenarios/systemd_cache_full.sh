# vm_cache_full under the installed unit (its sandbox: ProtectSystem=strict, the
# system call filter, the capability bounding set): a cache taken to 5% free is
# culled by the supervisor back above 10% (supervisor/cache_cull.h), and the next
# image reads right.
. /usr/lib/cfs-tests/systemd-lib.sh

step "start the unit; read img_big whole, then unmount it"
CFS_LOG_LEVEL=info
systemd_start_supervisor 1
mount_erofs /mnt/big fsid=img_big
check_manifest /mnt/big "$CFS_MANIFESTS/img_big.sha256"
umount_bounded /mnt/big

step "a filler takes the cache disk to 5% free"
fill_cache_to 5

step "the supervisor culls img_big's cache file, back to 10% free"
expect_cull

step "img_a reads whole, with no error"
mount_erofs /mnt/a fsid=img_a
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
umount_bounded /mnt/a
rm -f /cache/filler
require_alive
systemd_stop_supervisor
