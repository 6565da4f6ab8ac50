# Issue 5 (part): `cfsupervisor status` over the control socket. The socket unit
# starts the daemon on the first `status`; status shows the binding, the workers and
# the open objects; a user who is not root is refused; a paused spare holds a copy
# of every open object's anon fd and answers its first READ after a failover without
# an ObjectQuery; with nothing listening it says so and exits 3.
. /usr/lib/cfs-tests/systemd-lib.sh

# A group that may read status: in the config and on the socket (as the example
# config tells operators to do).
groupadd -r cfsreaders
useradd -r -M -G cfsreaders reader
useradd -r -M outsider
CFS_CONTROL_GROUP=cfsreaders
write_config 1
mkdir -p /run/systemd/system/cfsupervisor.socket.d
printf '[Socket]\nSocketMode=0660\nSocketGroup=cfsreaders\n' > /run/systemd/system/cfsupervisor.socket.d/group.conf
systemctl daemon-reload

step "only the socket unit runs; the first status starts the daemon"
systemctl start cfsupervisor.socket
unit_active && fail "$CFS_UNIT is active before anyone asked"
st=0
timeout 60 cfsupervisor status > /tmp/status1.txt 2> /tmp/status1.err || st=$?
[ "$st" -eq 0 ] || unit_fail "cfsupervisor status exited $st: $(cat /tmp/status1.err)"
cat /tmp/status1.txt
# The daemon answers status from its first loop turn, before its workers are up and
# it sends READY=1, so the unit may still be activating here.
wait_for 30 unit_active || unit_fail "status did not start $CFS_UNIT through its socket: $(unit_state)"
CFS_SUP_PID=$(unit_prop MainPID)
grep -q "^cfsupervisor .* - \(starting\|serving\)" /tmp/status1.txt || fail "status has no state line"
grep -q "Cache: $CFS_CACHE_DIR (tag $CFS_TAG)" /tmp/status1.txt || fail "status lacks the cache binding"

step "after a mount and a read, status shows the object and the workers"
mount_erofs /mnt/b fsid=img_b
cat /mnt/b/hello.txt > /dev/null
cfsupervisor status > /tmp/status2.txt || fail "cfsupervisor status failed"
cat /tmp/status2.txt
grep -q 'serving' /tmp/status2.txt || fail "status is not serving"
grep -q 'copy in systemd.s fd store' /tmp/status2.txt || fail "status does not say the device is in the fd store"
grep -q 'Objects: 1 open' /tmp/status2.txt || fail "status does not count the 1 open object"
grep -q 'erofs,img_b' /tmp/status2.txt || fail "status does not name the volume erofs,img_b"
n=$(grep -c 'pid [0-9]' /tmp/status2.txt || true)
[ "$n" -eq 2 ] || fail "status lists $n worker processes, expected 2 (1 serving + 1 spare)"
cfsupervisor status --json > /tmp/status.json || fail "cfsupervisor status --json failed"
cat /tmp/status.json
grep -q '"schema":1' /tmp/status.json && grep -q '"objects":{"erofs,img_b":1}' /tmp/status.json \
    || fail "status --json lacks the schema or the object"

step "worker statistics: a cold read is counted (requests, bytes, READ latency)"
# Which clock the workers' clock_gettime runs on here: without a vDSO clock
# (hpet, acpi_pm) it is a real system call, which policy/worker.seccomp must allow.
log "clocksource: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
file=/mnt/b/data/blob.bin
sha=$(manifest_sha /data/manifests/img_b.sha256 data/blob.bin)
[ "$(sha256sum "$file" | cut -d' ' -f1)" = "$sha" ] || fail "$file read wrong"
file_size=$(stat -c %s "$file")
blob_size=$(stat -c %s /data/blobs/img_b)
cfsupervisor status --json > /tmp/stats.json || fail "cfsupervisor status --json failed"
cfsupervisor status > /tmp/stats.txt || fail "cfsupervisor status failed"
cat /tmp/stats.txt
# The top-level figures come before the per-worker ones.
json_first() { grep -o "\"$1\":[0-9.a-z]*" /tmp/stats.json | head -n1 | cut -d: -f2; }
opens=$(json_first open); reads=$(json_first read); bytes=$(json_first bytes_served)
p50=$(json_first p50); p90=$(json_first p90); p99=$(json_first p99)
log "served: $opens OPEN, $reads READ, $bytes bytes (file $file_size, blob $blob_size); READ p50 $p50 p90 $p90 p99 $p99 us"
[ "${opens:-0}" -ge 1 ] || fail "status --json counts ${opens:-no} OPEN after a mount"
[ "${reads:-0}" -ge 1 ] || fail "status --json counts ${reads:-no} READ after a cold read"
[ "${bytes:-0}" -ge "$file_size" ] || fail "status --json: $bytes bytes served, less than the $file_size read"
[ "$bytes" -le $((blob_size + 1048576)) ] \
    || fail "status --json: $bytes bytes served, more than the blob ($blob_size) and a chunk"
for p in "$p50" "$p90" "$p99"; do
    case "$p" in [0-9]*) ;; *) fail "status --json has no READ latency percentiles: $(cat /tmp/stats.json)" ;; esac
done
grep -q '"in_flight":{"count":0,' /tmp/stats.json || fail "status --json: requests in flight while idle"
grep -q '^    Requests: [1-9][0-9]* OPEN, [0-9]* CLOSE, [1-9][0-9]* READ' /tmp/stats.txt || fail "status text lacks the requests"
grep -q '^     Latency: READ p50 ' /tmp/stats.txt || fail "status text lacks the READ latency"
grep -q '^   In flight: none' /tmp/stats.txt || fail "status text lacks the requests in flight"
if daemon_log | grep -q 'no statistics'; then fail "a worker could not use its statistics page"; fi

step "a member of control.group may read status; others are refused"
runuser -u reader -- cfsupervisor status > /tmp/status_reader.txt 2>&1 \
    || fail "status as a member of cfsreaders failed: $(cat /tmp/status_reader.txt)"
grep -q 'Objects: 1 open' /tmp/status_reader.txt || fail "the reader got no status: $(cat /tmp/status_reader.txt)"
st=0
runuser -u outsider -- cfsupervisor status > /tmp/status3.txt 2>&1 || st=$?
[ "$st" -eq 4 ] || fail "status as a user outside the group exited $st, expected 4: $(cat /tmp/status3.txt)"
grep -q 'permission denied' /tmp/status3.txt || fail "no 'permission denied' for the outsider: $(cat /tmp/status3.txt)"
log "the outsider was told: $(cat /tmp/status3.txt)"

step "worker statistics survive a worker's death"
kill -9 $(worker_pids)
# Both slots restarted once: their dead workers were reaped and their pages folded.
restarted_twice() {
    cfsupervisor status --json > /tmp/stats_after.json && [ "$(grep -o '"restarts":1' /tmp/stats_after.json | wc -l)" -eq 2 ]
}
wait_for 30 restarted_twice || fail "the workers were not restarted: $(cat /tmp/stats_after.json)"
cfsupervisor status --json > /tmp/stats_after.json || fail "cfsupervisor status --json failed"
bytes_after=$(grep -o '"bytes_served":[0-9]*' /tmp/stats_after.json | head -n1 | cut -d: -f2)
reads_after=$(grep -o '"read":[0-9]*' /tmp/stats_after.json | head -n1 | cut -d: -f2)
log "after killing every worker: $reads_after READ, $bytes_after bytes"
[ "${bytes_after:-0}" -ge "$bytes" ] || fail "bytes served fell from $bytes to $bytes_after when the workers died"
[ "${reads_after:-0}" -ge "$reads" ] || fail "READs fell from $reads to $reads_after when the workers died"

step "a spare holds every open object's anon fd, so it takes over without asking for one"
# Issue 6: a spare is handed a copy of each object ahead of need (ObjectShare), so
# the first READ after a failover costs no ObjectQuery round trip to the supervisor.
mount_erofs /mnt/a fsid=img_a
spare_holds_both() {
    cfsupervisor status --json > /tmp/spare.json && grep -q '"state":"paused","objects_held":2,' /tmp/spare.json
}
wait_for 20 spare_holds_both || fail "no paused spare holds both open objects: $(cat /tmp/spare.json)"
json_num() { grep -o "\"$1\":[0-9]*" /tmp/spare.json | tail -n 1 | cut -d: -f2; }
queries_before=$(json_num object_queries)
shared=$(json_num objects_shared)
[ "${shared:-0}" -ge 2 ] || fail "status --json: ${shared:-no} objects handed to spares, expected 2 or more"
cfsupervisor status | grep -q "Objects: 2 open; $shared handed to spares ahead of need" \
    || fail "status text lacks the objects handed to spares: $(cfsupervisor status)"
answers() { daemon_log | grep -c 'answered the first READ' || true; }
answers_before=$(answers)
victim=$(serving_worker_pid)
[ -n "$victim" ] || fail "no serving worker to kill"
kill -KILL "$victim"
# img_a's 64 MiB file was never read: its READs go to the spare, now serving.
big=$(cat "$CFS_EXPECT/img_a.big_file")
want=$(manifest_sha "$CFS_MANIFESTS/img_a.sha256" "$big")
got=$(file_sha "/mnt/a/$big") || fail "reading /mnt/a/$big after the failover failed"
[ "$got" = "$want" ] || fail "$big: sha256 $got after the failover, expected $want"
answered() { [ "$(answers)" -gt "$answers_before" ]; }
wait_for 10 answered || fail "no failover answer logged after worker $victim was killed"
line=$(daemon_log | grep 'answered the first READ' | tail -n 1)
log "$line"
case "$line" in
    *"; 0 ObjectQuery since its Resume"*) ;;
    *) fail "the spare asked the supervisor for an object before its first READ after the failover: $line" ;;
esac
cfsupervisor status --json > /tmp/spare.json || fail "cfsupervisor status --json failed"
[ "$(json_num object_queries)" = "$queries_before" ] \
    || fail "workers asked for objects ($queries_before ObjectQuery before the failover, $(json_num object_queries) after)"
umount_bounded /mnt/a

step "cfsupervisor.socket restarted under the running daemon: status still answers"
# systemd 252 stops the socket unit and then refuses to start it while its service
# runs ("Socket service cfsupervisor.service already active, refusing"); the socket
# file stays (RemoveOnStop=no) and leads to the daemon's copy of the socket. A
# systemd that did start it would bind a new socket there and hand the running
# service nothing: the daemon says so in its log.
lost() { daemon_log | grep -q 'control socket /run/cfsupervisor/control no longer leads to this daemon'; }
st=0
systemctl restart cfsupervisor.socket > /tmp/socket_restart.txt 2>&1 || st=$?
if [ "$st" -ne 0 ]; then
    log "systemctl restart cfsupervisor.socket refused (status $st): $(journalctl -b --no-pager -o cat -u cfsupervisor.socket | grep -m1 refusing)"
    timeout -s KILL 20 cfsupervisor status > /tmp/status_resocket.txt 2>&1 \
        || fail "status after the socket unit's restart failed: $(cat /tmp/status_resocket.txt)"
    grep -q '^cfsupervisor .* - serving' /tmp/status_resocket.txt || fail "status: $(cat /tmp/status_resocket.txt)"
else
    wait_for 15 lost || fail "the socket unit restarted under the daemon, and no warning says its path is lost"
fi

step "the control socket's file removed: the log says so; a restart of the service makes it again"
rm -f /run/cfsupervisor/control
wait_for 15 lost || fail "no warning that the control socket's path no longer leads to the daemon"
log "$(daemon_log | grep 'no longer leads to this daemon' | tail -n 1)"
cat /mnt/b/hello.txt > /dev/null || fail "reading /mnt/b/hello.txt with the control socket lost failed"
systemd_restart_supervisor
timeout -s KILL 20 cfsupervisor status > /tmp/status_resocketed.txt 2>&1 \
    || fail "status after restarting the service failed: $(cat /tmp/status_resocketed.txt)"
grep -q '^cfsupervisor .* - serving' /tmp/status_resocketed.txt || fail "status after the restart: $(cat /tmp/status_resocketed.txt)"

step "with nothing listening, status says so and exits 3"
umount_bounded /mnt/b
systemctl stop cfsupervisor.socket
systemd_stop_supervisor
st=0
cfsupervisor status > /tmp/status4.txt 2>&1 || st=$?
[ "$st" -eq 3 ] || fail "status with no daemon exited $st, expected 3: $(cat /tmp/status4.txt)"
grep -q 'not running' /tmp/status4.txt || fail "no 'not running' message: $(cat /tmp/status4.txt)"

step "started without its socket unit, the daemon makes the socket itself, for control.group"
# The unit grants no CAP_CHOWN: the socket's group is set as its owner may
# (supervisor/control_server.cc, set_group).
systemd_start_supervisor
sock=/run/cfsupervisor/control
[ -S "$sock" ] || fail "no control socket at $sock"
[ "$(stat -c '%G %a' "$sock")" = "cfsreaders 660" ] || fail "the control socket is $(stat -c '%U:%G %a' "$sock")"
! daemon_log | grep -q 'no control socket' || fail "the daemon made no control socket: $(daemon_log | grep 'no control socket')"
runuser -u reader -- cfsupervisor status > /tmp/status5.txt 2>&1 \
    || fail "status as a member of cfsreaders failed: $(cat /tmp/status5.txt)"
systemd_stop_supervisor
