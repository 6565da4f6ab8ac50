# Issue 3, scenario 3: the supervisor itself dies (`systemctl kill -s KILL`) and is
# restarted (`systemctl restart`) while 8 readers are reading. systemd keeps the
# bound device in its fd store; each new supervisor takes it back, writes `restore`,
# and every reader completes with correct data and no error.
. /usr/lib/cfs-tests/systemd-lib.sh

step "start the unit with 2 workers and a spare"
CFS_LOG_LEVEL=info
systemd_start_supervisor 2
mount_erofs /mnt/big fsid=img_big
mount_erofs /mnt/a fsid=img_a
mkdir -p /mnt/ref
mount -t erofs -o ro,loop "$CFS_BLOBS/img_big" /mnt/ref || fail "loop mount of img_big failed"

step "SIGKILL the whole unit (supervisor and workers) during reads"
start_readers 4 3 100 /mnt/a
sleep 3
old=$CFS_SUP_PID
t0=$(now_cs)
systemctl kill -s KILL "$CFS_UNIT"
wait_restarted "$old"
log "systemd restarted the supervisor: pid $old -> $CFS_SUP_PID in $(elapsed "$t0")s"
check_readers "after systemctl kill -s KILL"

step "systemctl restart during reads"
start_readers 4 3 100 /mnt/a
sleep 3
systemd_restart_supervisor
check_readers "after systemctl restart"
require_alive

step "the journal shows the device came back from the fd store, twice"
daemon_log > /tmp/daemon.log
n=$(grep -c "took /dev/cachefiles from systemd's fd store" /tmp/daemon.log || true)
[ "$n" -eq 2 ] || fail "expected 2 'took /dev/cachefiles from systemd's fd store' lines, the journal has $n"
n=$(grep -c 'restore written: requests the previous instance had taken' /tmp/daemon.log || true)
[ "$n" -eq 2 ] || fail "expected 2 'restore written' lines after restarts, the journal has $n"
n=$(grep -c 'bound /dev/cachefiles to cache' /tmp/daemon.log || true)
[ "$n" -eq 1 ] || fail "the device was bound $n times; the restarts must reuse the stored one"
echo "CFS-INFO: $(grep -E "took /dev/cachefiles|restore written: requests" /tmp/daemon.log | head -n 2 | tr '\n' '|')"

step "umount, stop"
umount /mnt/ref
umount_bounded /mnt/a
umount_bounded /mnt/big
systemd_stop_supervisor
