# Issue 5 (part): a request a worker holds too long is visible. A worker whose first
# READ stalls for 45 s (test fault injection, read-stall): while it stalls, `cfsupervisor
# status` shows the request in flight (worker, pid, object, age) and marks it STUCK
# after 30 s; the journal says so once, naming the worker's pid, the object and the
# age; when the stall ends the mount completes, the data is right, the journal says
# the request is over, and nothing is in flight any more.
. /usr/lib/cfs-tests/systemd-lib.sh

CFS_FAULT_FILE=/run/cfs-fault
CFS_LOG_LEVEL=info
# No spare: the worker with the fault is the one that serves.
CFS_SPARES=0
echo "read-stall 1" > "$CFS_FAULT_FILE"
systemd_start_supervisor 1
daemon_log | grep -q "gets fault point read-stall" || unit_fail "no worker got fault point read-stall"
wpid=$(worker_pids)

step "mount img_b: its first READ stalls"
# The mount itself reads (the superblock), so it waits for the stall.
(mount_erofs /mnt/b fsid=img_b) &
mounter=$!
in_flight() { cfsupervisor status --json > /tmp/stuck.json && grep -q '"in_flight":{"count":1,' /tmp/stuck.json; }
wait_for 20 in_flight || fail "status --json shows no request in flight: $(cat /tmp/stuck.json)"
cat /tmp/stuck.json
grep -q "\"requests\":\[{\"worker\":0,\"pid\":$wpid,\"opcode\":\"READ\",\"object_id\":[0-9]*,\"object\":\"erofs,img_b img_b\"" \
    /tmp/stuck.json || fail "status --json does not name worker, pid, opcode and object of the request in flight"
grep -q '"stuck":false' /tmp/stuck.json || fail "a request a few seconds old is called stuck"

step "after 30 s it is STUCK in status, and logged once"
stuck() { cfsupervisor status > /tmp/stuck.txt && grep -q "worker 0 pid $wpid READ of object [0-9]* (erofs,img_b img_b) for .* - STUCK" /tmp/stuck.txt; }
wait_for 40 stuck || fail "status never marked the request STUCK: $(cat /tmp/stuck.txt)"
cat /tmp/stuck.txt
cfsupervisor status --json | grep -q '"stuck":true' || fail "status --json does not say stuck"
warned() { daemon_log | grep -q "worker 0 (pid $wpid) has been answering a READ of object [0-9]* (erofs,img_b img_b) for [0-9]* s"; }
wait_for 15 warned || unit_fail "the journal has no warning naming the stuck request"
daemon_log | grep "has been answering"
age=$(daemon_log | grep -o 'has been answering a READ .* for [0-9]* s' | head -n1 | sed 's/.* for \([0-9]*\) s/\1/')
[ "$age" -ge 30 ] && [ "$age" -le 44 ] || fail "the warning gives an age of $age s, expected 30 to 44"
kill -0 "$mounter" 2>/dev/null || fail "the mount finished before the stall ended"

step "the stall ends: the mount completes, the data is right, the journal says so"
wait "$mounter" || fail "the mount failed after the stall"
check_manifest /mnt/b "$CFS_MANIFESTS/img_b.sha256"
over() { daemon_log | grep -q "worker 0 (pid $wpid) is done with the request it was stuck on"; }
wait_for 15 over || unit_fail "the journal does not say the stuck request is over"
n=$(daemon_log | grep -c "has been answering" || true)
[ "$n" -eq 1 ] || unit_fail "the stuck request was logged $n times, expected once"
cfsupervisor status --json > /tmp/after.json
grep -q '"in_flight":{"count":0,' /tmp/after.json || fail "requests still in flight after the stall: $(cat /tmp/after.json)"
[ "$(worker_pids)" = "$wpid" ] || fail "the worker was replaced ($wpid -> $(worker_pids)); a slow one must not be"
umount_bounded /mnt/b
