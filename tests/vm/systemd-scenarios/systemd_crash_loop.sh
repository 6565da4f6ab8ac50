# Issue 3, scenario 4: every worker crashes on every READ (test fault injection,
# read-before-complete, for every worker started while the fault file exists). The
# supervisor stays up and restarts workers with growing delays; a reader waits,
# never sees an error. Once the fault is lifted (file removed) the next worker serves:
# the waiting reader completes with correct data and other images are served.
. /usr/lib/cfs-tests/systemd-lib.sh

CFS_FAULT_FILE=/run/cfs-fault
echo read-before-complete > "$CFS_FAULT_FILE"

step "start the unit with every worker crashing on its first READ"
CFS_LOG_LEVEL=info
systemd_start_supervisor 1
sup=$CFS_SUP_PID

step "mount img_a: the mount's READs crash worker after worker"
mkdir -p /mnt/a
(mount -t erofs none -o fsid=img_a /mnt/a > /tmp/mount_a.out 2>&1; echo $? > /tmp/mount_a.status) &
crashes() { daemon_log | grep -c 'killed by signal 6' || true; }
enough_crashes() { [ "$(crashes)" -ge 6 ]; }
wait_for 120 enough_crashes || unit_fail "only $(crashes) worker crashes (SIGABRT) logged in 120 s"
log "$(crashes) worker crashes so far"
[ ! -e /tmp/mount_a.status ] || fail "the mount returned while every worker crashes: $(cat /tmp/mount_a.out)"

step "the supervisor stayed up and backed off"
[ "$(unit_prop MainPID)" = "$sup" ] || fail "the supervisor was replaced: main pid $(unit_prop MainPID), was $sup"
require_alive
daemon_log > /tmp/daemon.log
delays=$(grep -o 'restarts in [0-9]* ms' /tmp/daemon.log | awk '{ print $3 }' | tr '\n' ' ')
log "restart delays logged (ms): $delays"
# Each slot's delay doubles with its consecutive failures: the largest delay logged
# must have grown past the first ones.
max=$(echo "$delays" | tr ' ' '\n' | sort -n | tail -n 1)
[ -n "$max" ] && [ "$max" -ge 400 ] || fail "no growing restart backoff in the log: delays '$delays'"
echo "CFS-INFO: crash loop: $(crashes) crashes, restart delays (ms): $delays"
status=$(unit_prop StatusText)
case "$status" in "crash loop: worker"*) ;; *) fail "systemctl status does not show the crash loop: '$status'" ;; esac
log "systemctl status says: $status"

step "lift the fault: the waiting mount completes, everything reads correctly"
rm -f "$CFS_FAULT_FILE"
lifted_at=$(now_cs)
mounted() { [ -e /tmp/mount_a.status ]; }
wait_for 120 mounted || unit_fail "mount of img_a still waiting 120 s after the fault was lifted"
[ "$(cat /tmp/mount_a.status)" = 0 ] || fail "mount of img_a failed: $(cat /tmp/mount_a.out)"
log "mount returned $(elapsed "$lifted_at")s after the fault was lifted"
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
mount_erofs /mnt/b fsid=img_b
check_manifest /mnt/b "$CFS_MANIFESTS/img_b.sha256"
[ "$(unit_prop MainPID)" = "$sup" ] || fail "the supervisor was replaced"
[ "$(unit_prop StatusText)" = serving ] || fail "status after recovery is '$(unit_prop StatusText)', expected 'serving'"
umount_bounded /mnt/b
umount_bounded /mnt/a
systemd_stop_supervisor
