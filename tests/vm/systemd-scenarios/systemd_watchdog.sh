# Issue 5 (part): the supervisor pings systemd's watchdog from its main loop. A main
# loop that hangs (test fault injection, supervisor-hang) is killed by systemd
# (WatchdogSec=, shortened here by a drop-in) and restarted through the fd store;
# readers meanwhile see no error and read correct data.
. /usr/lib/cfs-tests/systemd-lib.sh

CFS_FAULT_FILE=/run/cfs-fault
CFS_LOG_LEVEL=info
mkdir -p /run/systemd/system/cfsupervisor.service.d
printf '[Service]\nWatchdogSec=4s\n' > /run/systemd/system/cfsupervisor.service.d/watchdog.conf
systemctl daemon-reload

step "start; 4 readers stream the 128 MiB file, 2 compare random blocks"
systemd_start_supervisor 1
daemon_log | grep -q 'systemd watchdog: 4000 ms limit' || unit_fail "the supervisor does not ping the watchdog"
mount_erofs /mnt/big fsid=img_big
mkdir -p /mnt/ref
mount -t erofs -o ro,loop "$CFS_BLOBS/img_big" /mnt/ref || fail "loop mount of img_big failed"
# The streams alone can end before systemd's kill (workers go on serving while the
# supervisor hangs); the random readers take several times as long.
start_readers 4 2
sleep 2

step "hang the supervisor's main loop at its next worker start"
old=$CFS_SUP_PID
echo supervisor-hang > "$CFS_FAULT_FILE"
kill -KILL $(worker_pids | cut -d' ' -f1)
hung() { daemon_log | grep -q "the supervisor's main loop hangs now"; }
wait_for 20 hung || unit_fail "the supervisor did not reach the hang"
rm -f "$CFS_FAULT_FILE"   # the next instance must not hang too
t0=$(now_cs)
wait_restarted "$old"
log "systemd replaced the hung supervisor (pid $old -> $CFS_SUP_PID) $(elapsed "$t0")s after the hang"
left=$(readers_left)
[ "$left" -gt 0 ] || fail "the readers had finished before systemd killed the hung supervisor; the test proves nothing"
log "$left readers were still reading after the watchdog restart"
journalctl -b --no-pager -u "$CFS_UNIT" | grep -q 'Watchdog timeout' \
    || unit_fail "systemd's journal has no 'Watchdog timeout' for the unit"

step "readers finish with correct data and no error"
check_readers "readers across the watchdog restart"
require_alive
umount /mnt/ref
umount_bounded /mnt/big
systemd_stop_supervisor
