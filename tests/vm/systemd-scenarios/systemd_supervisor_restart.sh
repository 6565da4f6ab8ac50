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
left=$(readers_left)
[ "$left" -gt 0 ] || fail "the readers had finished before the kill; the test proves nothing"
log "$left readers were reading when the unit was killed"
wait_restarted "$old"
log "systemd restarted the supervisor: pid $old -> $CFS_SUP_PID in $(elapsed "$t0")s"
check_readers "after systemctl kill -s KILL"

step "systemctl restart during reads"
start_readers 4 3 100 /mnt/a
sleep 3
systemd_restart_supervisor
left=$(readers_left)
[ "$left" -gt 0 ] || fail "the readers had finished before the restart did; the test proves nothing"
log "$left readers were still reading when the restart was done"
check_readers "after systemctl restart"
require_alive

step "six kills in a row during reads: no start limit fails the unit and drops the cache"
# systemd's default start limit (5 starts in 10 s) would fail the unit at the sixth,
# and a failed unit loses its fd store; the unit sets StartLimitIntervalSec=0. Each
# supervisor is killed as soon as it exists, so the six starts fit in a few seconds.
# Each start is killed as soon as systemd has forked it (a start counts then), not
# once it serves: under TCG, with readers, a supervisor takes seconds to get going,
# and kills that far apart would stay under the limit without the setting. And not
# through systemctl, a D-Bus client that takes about a second a call here.
cg=/sys/fs/cgroup/system.slice/$CFS_UNIT/cgroup.procs
[ -r "$cg" ] || fail "no $cg"
kill_unit() { while read -r _p; do kill -KILL "$_p" 2> /dev/null || true; done < "$cg"; }
newest_pid() { _m=0; while read -r _p; do [ "$_p" -gt "$_m" ] && _m=$_p; done < "$cg"; echo "$_m"; }
start_readers 4 3 100 /mnt/a
t0=$(now_cs)
last=$(newest_pid)
for i in 1 2 3 4 5 6; do
    kill_unit
    _started_again() { [ "$(newest_pid)" -gt "$last" ]; }
    wait_for 30 _started_again || unit_fail "systemd started nothing after kill $i: $(unit_state)"
    last=$(newest_pid)
done
log "six kills in $(elapsed "$t0")s"
wait_for 60 unit_active || unit_fail "the unit did not come back after six kills in a row: $(unit_state)"
CFS_SUP_PID=$(unit_prop MainPID)
log "unit $(unit_state) $(elapsed "$t0")s after the first of six kills"
check_readers "after six kills in a row"

step "the journal shows the device came back from the fd store each time it got that far"
daemon_log > /tmp/daemon.log
n=$(grep -c "took /dev/cachefiles from systemd's fd store" /tmp/daemon.log || true)
[ "$n" -ge 3 ] || fail "expected 3 or more 'took /dev/cachefiles from systemd's fd store' lines, the journal has $n"
n=$(grep -c 'restore written: requests the previous instance had taken' /tmp/daemon.log || true)
[ "$n" -ge 3 ] || fail "expected 3 or more 'restore written' lines after restarts, the journal has $n"
n=$(grep -c 'bound /dev/cachefiles to cache' /tmp/daemon.log || true)
[ "$n" -eq 1 ] || fail "the device was bound $n times; the restarts must reuse the stored one"
echo "CFS-INFO: $(grep -E "took /dev/cachefiles|restore written: requests" /tmp/daemon.log | head -n 2 | tr '\n' '|')"

step "a new cache.tag in the config: a restart keeps the cache as bound, and says so"
# The device from the fd store stays bound to the first start's cache.dir and tag;
# status and the ready line show those, not the config's (supervisor/fd_store.h).
sed -i "s/^tag = \"$CFS_TAG\"\$/tag = \"othertag\"/" "$CFS_CONFIG"
grep -q '^tag = "othertag"$' "$CFS_CONFIG" || fail "could not change cache.tag in $CFS_CONFIG"
systemd_restart_supervisor
cfsupervisor status --json > /tmp/status.json || fail "cfsupervisor status --json failed"
grep -q "\"cache\":{\"dir\":\"$CFS_CACHE_DIR\",\"tag\":\"$CFS_TAG\"" /tmp/status.json \
    || fail "status does not show the tag the cache is bound with ($CFS_TAG): $(head -c 300 /tmp/status.json)"
daemon_log | grep -q "the cache stays bound to $CFS_CACHE_DIR (tag $CFS_TAG) as when it was first started; the config now says .* (tag othertag)" \
    || fail "no warning that the config's cache.tag does not apply: $(daemon_log | tail -n 5)"
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"

step "umount, stop"
umount /mnt/ref
umount_bounded /mnt/a
umount_bounded /mnt/big
systemd_stop_supervisor
