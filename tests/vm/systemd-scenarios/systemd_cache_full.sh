# vm_cache_full under the installed unit (its sandbox: ProtectSystem=strict, the
# system call filter, the capability bounding set): a cache taken to 5% free is
# culled by the supervisor back above 10% (supervisor/cache_cull.h), and the next
# image reads right.
. /usr/lib/cfs-tests/systemd-lib.sh

avail_kib() { df -k /cache | awk 'NR == 2 { print $4 }'; }
total_kib() { df -k /cache | awk 'NR == 2 { print $2 }'; }
free_percent() { echo $(( $(avail_kib) * 100 / $(total_kib) )); }

step "start the unit; read img_big whole, then unmount it"
CFS_LOG_LEVEL=info
systemd_start_supervisor 1
mount_erofs /mnt/big fsid=img_big
check_manifest /mnt/big "$CFS_MANIFESTS/img_big.sha256"
umount_bounded /mnt/big

step "a filler takes the cache disk to 5% free"
filler_mib=$(( ($(avail_kib) - $(total_kib) * 5 / 100) / 1024 ))
[ "$filler_mib" -gt 0 ] || fail "the cache disk has less than 5% free already"
dd if=/dev/zero of=/cache/filler bs=1M count="$filler_mib" conv=fsync 2> /dev/null || fail "writing the filler"
log "filler of $filler_mib MiB: $(free_percent)% free"
# (Not checked here: the supervisor may cull before this line runs. Its log line
# below says the cache was under 7% free.)

step "the supervisor culls img_big's cache file, back to 10% free"
culled() { daemon_log | grep -q 'had less than 7% free: culled [1-9][0-9]* cache file'; }
wait_for 20 culled || fail "nothing culled 20 s after the cache went below 7% free: $(daemon_log | tail -n 5)"
daemon_log | grep 'culled' | sed 's/^/CFS-INFO: /'
[ "$(free_percent)" -ge 10 ] || fail "only $(free_percent)% free after culling, below the run limit"

step "img_a reads whole, with no error"
mount_erofs /mnt/a fsid=img_a
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
umount_bounded /mnt/a
rm -f /cache/filler
require_alive
systemd_stop_supervisor
