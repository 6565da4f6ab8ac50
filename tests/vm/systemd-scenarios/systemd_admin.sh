# Issue 5: the admin commands, with systemd running the daemon.
# 1. `cfsupervisor restart-workers` while readers stream the 128 MiB file and compare
#    every byte: it succeeds, every worker pid changes, no reader sees an error, and
#    no failover was needed.
# 2. `cfsupervisor reload` of a broken config fails, prints file:line:column, the
#    journal says the same, and the daemon keeps its config and workers and serves.
#    A config changing cache.tag is refused naming the key.
# 3. `systemctl reload` (ExecReload=) with workers.count 1 -> 2 takes effect; SIGHUP
#    with 2 -> 1 does too. With workers.spares 0 (a reload), restart-workers runs one
#    extra worker for the duration and readers see no error.
# 4. A member of control.group may read status but is refused reload and
#    restart-workers (exit 4).
. /usr/lib/cfs-tests/systemd-lib.sh

groupadd -r cfsreaders
useradd -r -M -G cfsreaders reader
CFS_CONTROL_GROUP=cfsreaders
CFS_LOG_LEVEL=info
# The socket unit owns the control socket, readable by the group (as systemd_status).
mkdir -p /run/systemd/system/cfsupervisor.socket.d
printf '[Socket]\nSocketMode=0660\nSocketGroup=cfsreaders\n' > /run/systemd/system/cfsupervisor.socket.d/group.conf
systemctl daemon-reload
systemctl start cfsupervisor.socket

# status_field NAME: a number from `cfsupervisor status --json` ("workers_wanted").
status_field() { cfsupervisor status --json | grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2; }
# serving_count: workers status --json lists as serving (its "workers" array only).
serving_count() { cfsupervisor status --json | sed 's/.*"workers":\[//' | grep -o '"state":"serving"' | wc -l; }

step "start with 1 worker and a spare; 4 readers stream, 2 compare random blocks"
systemd_start_supervisor 1
mount_erofs /mnt/big fsid=img_big
mkdir -p /mnt/ref
mount -t erofs -o ro,loop "$CFS_BLOBS/img_big" /mnt/ref || fail "loop mount of img_big failed"
start_readers 4 2 150
sleep 3
old_pids=$(worker_pids)
[ "$(worker_count)" -eq 2 ] || fail "expected 2 workers (1 serving, 1 spare), have: $old_pids"

step "restart-workers while they read"
t0=$(now_cs)
st=0
timeout 300 cfsupervisor restart-workers > /tmp/rw.out 2> /tmp/rw.err || st=$?
cat /tmp/rw.out /tmp/rw.err
[ "$st" -eq 0 ] || unit_fail "cfsupervisor restart-workers exited $st: $(cat /tmp/rw.err)"
log "restart-workers took $(elapsed "$t0")s: $(cat /tmp/rw.out)"
grep -q '^restarted 2 worker(s) one at a time' /tmp/rw.out || fail "unexpected answer: $(cat /tmp/rw.out)"
left=$(readers_left)
[ "$left" -gt 0 ] || fail "the readers had finished before the restart did; the test proves nothing"
log "$left of 6 readers were still reading when restart-workers returned"
new_pids=$(worker_pids)
log "worker pids: $old_pids -> $new_pids"
[ "$(worker_count)" -eq 2 ] || fail "expected 2 workers after the restart, have: $new_pids"
for p in $old_pids; do
    case " $new_pids " in *" $p "*) fail "worker pid $p survived restart-workers ($new_pids)" ;; esac
done
require_workers_in_unit
[ "$(serving_count)" -eq 1 ] || fail "expected 1 serving worker after the restart: $(cfsupervisor status)"

check_readers "readers during restart-workers"
[ "$(status_field failovers)" -eq 0 ] || fail "restart-workers needed a failover: $(cfsupervisor status)"
daemon_log | grep -q 'worker [0-9]* (pid [0-9]*) pausing: it is being replaced' \
    || unit_fail "the journal does not show the serving worker paused for its replacement"
log "6 readers read correct data with no error across restart-workers; no failover"
require_alive

step "reload of a broken config is refused with file:line:column; nothing changes"
cp "$CFS_CONFIG" /tmp/good.toml
sed 's/^count = 1$/count = "two"/' /tmp/good.toml > "$CFS_CONFIG"
grep -q 'count = "two"' "$CFS_CONFIG" || fail "could not break the config: $(cat "$CFS_CONFIG")"
pids_before=$(worker_pids)
st=0
cfsupervisor reload > /tmp/reload1.out 2> /tmp/reload1.err || st=$?
cat /tmp/reload1.out /tmp/reload1.err
[ "$st" -eq 1 ] || fail "reload of a broken config exited $st, expected 1"
grep -Eq "^$CFS_CONFIG:[0-9]+:[0-9]+: workers.count: expected an integer" /tmp/reload1.err \
    || fail "the error does not name file:line:column: $(cat /tmp/reload1.err)"
where=$(grep -Eo "^$CFS_CONFIG:[0-9]+:[0-9]+" /tmp/reload1.err)
daemon_log | grep -q "reload (cfsupervisor reload) refused.*$where: workers.count" \
    || unit_fail "the journal does not give the same error ($where)"
printf '[cache\n' >> "$CFS_CONFIG"
st=0
cfsupervisor reload 2> /tmp/reload2.err || st=$?
[ "$st" -eq 1 ] && grep -Eq "^$CFS_CONFIG:[0-9]+:[0-9]+: " /tmp/reload2.err \
    || fail "reload of a config with a TOML syntax error: status $st, $(cat /tmp/reload2.err)"
log "syntax error reported as:"
grep "^$CFS_CONFIG" /tmp/reload2.err
sed 's/^tag = .*/tag = "other"/' /tmp/good.toml > "$CFS_CONFIG"
st=0
cfsupervisor reload 2> /tmp/reload3.err || st=$?
[ "$st" -eq 1 ] && grep -q 'cache.tag cannot change while cfsupervisor runs' /tmp/reload3.err \
    || fail "a cache.tag change was not refused by name: status $st, $(cat /tmp/reload3.err)"
unit_active || unit_fail "the unit is not active after refused reloads: $(unit_state)"
[ "$(worker_pids)" = "$pids_before" ] || fail "refused reloads changed the workers: $pids_before -> $(worker_pids)"
[ "$(status_field workers_wanted)" -eq 1 ] || fail "refused reloads changed workers.count: $(cfsupervisor status)"
cfsupervisor status | grep -q "Cache: $CFS_CACHE_DIR (tag $CFS_TAG)" || fail "the binding changed: $(cfsupervisor status)"
sync
echo 3 > /proc/sys/vm/drop_caches
random_reads "/mnt/big/$CFS_BIG" "/mnt/ref/$CFS_BIG" 20 /tmp/r/after_refused || fail "read after refused reloads: $(cat /tmp/r/after_refused)"
require_alive

step "systemctl reload with workers.count 1 -> 2"
write_config 2
st=0
timeout 60 systemctl reload "$CFS_UNIT" || st=$?
[ "$st" -eq 0 ] || unit_fail "systemctl reload exited $st"
daemon_log | grep -q "reload (cfsupervisor reload) of $CFS_CONFIG: workers.count 1 -> 2" \
    || unit_fail "the journal has no reload of workers.count 1 -> 2"
two_serving() { [ "$(serving_count)" -eq 2 ] && [ "$(worker_count)" -eq 3 ]; }
wait_for 60 two_serving || fail "workers.count 2 did not take effect: $(cfsupervisor status)"
[ "$(status_field workers_wanted)" -eq 2 ] || fail "status does not want 2 workers: $(cfsupervisor status)"
cfsupervisor status
require_alive
require_workers_in_unit

step "SIGHUP with workers.count 2 -> 1"
write_config 1
kill -HUP "$CFS_SUP_PID"
one_serving() { [ "$(status_field workers_wanted)" -eq 1 ] && [ "$(serving_count)" -eq 1 ] && [ "$(worker_count)" -eq 2 ]; }
wait_for 60 one_serving || fail "SIGHUP with workers.count 1 did not take effect: $(cfsupervisor status)"
daemon_log | grep -q "reload (SIGHUP) of $CFS_CONFIG: workers.count 2 -> 1" \
    || unit_fail "the journal has no SIGHUP reload of workers.count 2 -> 1"
unit_active || unit_fail "the unit is not active after SIGHUP: $(unit_state)"
random_reads "/mnt/big/$CFS_BIG" "/mnt/ref/$CFS_BIG" 20 /tmp/r/after_hup || fail "read after SIGHUP: $(cat /tmp/r/after_hup)"
require_alive

step "with no spares, restart-workers runs one extra worker for the duration"
CFS_SPARES=0 write_config 1
cfsupervisor reload || unit_fail "reload with workers.spares 0 failed"
one_worker() { [ "$(worker_count)" -eq 1 ] && [ "$(serving_count)" -eq 1 ]; }
wait_for 60 one_worker || fail "workers.spares 0 did not take effect: $(cfsupervisor status)"
old_pids=$(worker_pids)
start_readers 0 2 150
sleep 1
st=0
timeout 300 cfsupervisor restart-workers > /tmp/rw2.out 2> /tmp/rw2.err || st=$?
cat /tmp/rw2.out /tmp/rw2.err
[ "$st" -eq 0 ] || unit_fail "restart-workers with no spares exited $st: $(cat /tmp/rw2.err)"
new_pids=$(worker_pids)
log "worker pids: $old_pids -> $new_pids"
[ "$(worker_count)" -eq 1 ] || fail "the extra worker is still there after restart-workers: $new_pids"
[ "$new_pids" != "$old_pids" ] || fail "the worker pid did not change: $new_pids"
daemon_log | grep -q 'worker [0-9]* (pid [0-9]*) is no longer wanted' \
    || unit_fail "the journal does not show the extra worker going"
check_readers "random readers during restart-workers without a spare"
[ "$(status_field failovers)" -eq 0 ] || fail "restart-workers needed a failover: $(cfsupervisor status)"
require_alive

step "a member of control.group reads status but may not reload or restart workers"
runuser -u reader -- cfsupervisor status > /tmp/reader_status.txt 2>&1 \
    || fail "status as a member of cfsreaders failed: $(cat /tmp/reader_status.txt)"
for cmd in reload restart-workers; do
    st=0
    runuser -u reader -- cfsupervisor "$cmd" > "/tmp/reader_$cmd.txt" 2>&1 || st=$?
    [ "$st" -eq 4 ] || fail "$cmd as a non-root user exited $st, expected 4: $(cat "/tmp/reader_$cmd.txt")"
    grep -q "permission denied: \"$cmd\" is for root only" "/tmp/reader_$cmd.txt" \
        || fail "$cmd as a non-root user: $(cat "/tmp/reader_$cmd.txt")"
done
log "the reader was told: $(cat /tmp/reader_reload.txt)"

step "umount, stop"
umount /mnt/ref
umount_bounded /mnt/big
systemd_stop_supervisor
