# [workers] count = 2: there really are 2 worker processes, and concurrent readers
# plus all the multi_mount checks pass with them; both workers survive.
. /cfs/lib.sh

step "start the supervisor with 2 workers"
start_supervisor 2
have_two_workers() { [ "$(worker_count)" -eq 2 ]; }
wait_for 10 have_two_workers || fail "expected 2 cfsupervisor-worker pids, have: '$(worker_pids)'"
workers=$(worker_pids)
log "worker pids: $workers"
step "mount img_a; 8 concurrent readers on a cold cache"
mount_erofs /mnt/a fsid=img_a
concurrent_readers /mnt/a "$CFS_MANIFESTS/img_a.sha256" 8 240
umount_bounded /mnt/a
step "mount all images"
mount_all_images
step "verify all images"
check_all_images
step "umount all images"
umount_all_images
require_alive
[ "$(worker_pids)" = "$workers" ] || fail "worker pids changed: before '$workers', now '$(worker_pids)'"
