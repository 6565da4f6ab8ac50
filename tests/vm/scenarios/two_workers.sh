# [workers] count = 2 (and the default 1 spare): there really are 3 worker processes,
# 2 of them serving and both answering READs, and concurrent readers plus all the
# multi_mount checks pass with them; all of them survive.
. /cfs/lib.sh

step "start the supervisor with 2 workers"
start_supervisor 2
have_three_workers() { [ "$(worker_count)" -eq 3 ]; }
wait_for 10 have_three_workers || fail "expected 3 cfsupervisor-worker pids (2 + 1 spare), have: '$(worker_pids)'"
serving=$(grep -c 'worker [0-9]* (pid [0-9]*) serving$' "$CFS_LOG" || true)
[ "$serving" -eq 2 ] || fail "expected 2 'worker N (pid P) serving' lines, the log has $serving"
workers=$(worker_pids)
log "worker pids: $workers"
step "mount img_a; 8 concurrent readers on a cold cache"
mount_erofs /mnt/a fsid=img_a
concurrent_readers /mnt/a "$CFS_MANIFESTS/img_a.sha256" 8 240
# Both serving workers took READs: the kernel hands each request to whichever worker
# reads the device first, so eight readers keep both busy.
cfsupervisor status --json > /tmp/status.json || fail "cfsupervisor status --json failed"
reads=$(grep -o '"state":"serving","objects_held":[0-9]*,[^}]*"read":[0-9]*' /tmp/status.json | sed 's/.*"read"://')
log "READs answered by each serving worker: $(echo $reads)"
[ "$(echo "$reads" | wc -w)" -eq 2 ] || fail "expected 2 serving workers in status --json: $(cat /tmp/status.json)"
for n in $reads; do [ "$n" -gt 0 ] || fail "a serving worker answered no READ: $(cat /tmp/status.json)"; done
umount_bounded /mnt/a
step "mount all images"
mount_all_images
step "verify all images"
check_all_images
step "umount all images"
umount_all_images
require_alive
[ "$(worker_pids)" = "$workers" ] || fail "worker pids changed: before '$workers', now '$(worker_pids)'"
