# A supervisor restarted by systemd that cannot start (here: its config was made
# invalid since the last start) holds the device it took from the fd store instead
# of exiting, which would end the unit and, with systemd 252, drop the fd store and
# the cache with it (supervisor/hold_device.h). Readers wait, `cfsupervisor status`
# and the unit's status say why; once the config is fixed `systemctl reload` starts
# the supervisor (it would also try by itself every 10 s), which writes `restore`,
# and every reader completes with correct data and no error.
. /usr/lib/cfs-tests/systemd-lib.sh

step "start the unit, mount, read"
CFS_LOG_LEVEL=info
systemd_start_supervisor 1
mount_erofs /mnt/big fsid=img_big
mount_erofs /mnt/a fsid=img_a
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"

step "break the config, then SIGKILL the unit"
cp "$CFS_CONFIG" /tmp/good.toml
printf '[workers]\ncount = "many"\n' > "$CFS_CONFIG"
old=$CFS_SUP_PID
systemctl kill -s KILL "$CFS_UNIT"
wait_restarted "$old"
_holding() { daemon_log | grep -q 'not serving: cannot start: .*holding the cache device'; }
wait_for 30 _holding || fail "the restarted supervisor did not hold the device: $(daemon_log | tail -n 15)"
log "holding: $(unit_prop StatusText)"
unit_active || unit_fail "the unit is not active while the supervisor holds the device"
[ -z "$(worker_pids)" ] || fail "workers run while the supervisor cannot start: $(worker_pids)"

step "readers wait, and status says why"
start_readers 2 0 100
sleep 3
[ "$(readers_left)" -eq 2 ] || fail "readers ended while no worker served (an error?): $(cat /tmp/r/*.err)"
_st=0
out=$(cfsupervisor status 2>&1) || _st=$?
[ "$_st" -eq 1 ] || fail "cfsupervisor status exited $_st while holding: $out"
echo "$out" | grep -q 'not serving: cannot start: .*cfsupervisor.toml' \
    || fail "cfsupervisor status does not say why: $out"
unit_prop StatusText | grep -q 'not serving' || fail "the unit's status does not say why: $(unit_prop StatusText)"

step "reload with the config still broken: refused, saying why"
_st=0
out=$(cfsupervisor reload 2>&1) || _st=$?
[ "$_st" -eq 1 ] || fail "cfsupervisor reload exited $_st with the config still broken: $out"
echo "$out" | grep -q 'still cannot start: .*cfsupervisor.toml' || fail "cfsupervisor reload does not say why: $out"

step "fix the config and reload: the supervisor starts, restores, and the readers finish"
cp /tmp/good.toml "$CFS_CONFIG"
# At once, not at the next 10 s retry: the reload itself succeeds.
_st=0
out=$(systemctl reload "$CFS_UNIT" 2>&1) || _st=$?
[ "$_st" -eq 0 ] || fail "systemctl reload exited $_st after the config was fixed: $out; $(daemon_log | tail -n 5)"
_serving() { unit_prop StatusText | grep -q '^serving'; }
wait_for 30 _serving || fail "the supervisor did not start after the config was fixed: $(unit_state), $(unit_prop StatusText)"
check_readers "after holding the device"
daemon_log | grep -q 'restore written: requests the previous instance had taken' \
    || fail "no restore after the supervisor started from holding"
n=$(daemon_log | grep -c 'bound /dev/cachefiles to cache' || true)
[ "$n" -eq 1 ] || fail "the device was bound $n times; the held one must be reused"
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"

step "umount, stop"
umount_bounded /mnt/a
umount_bounded /mnt/big
systemd_stop_supervisor
