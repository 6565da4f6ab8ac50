# Under the real unit (units/cfsupervisor.service, with its CapabilityBoundingSet), a
# serving worker that never answers Pause is SIGKILLed after 5 s and the failover
# completes. Workers run as another user than the supervisor, so the kill needs
# CAP_KILL; without it the kill failed with EPERM and the hung worker held the
# failover up for as long as it liked. The busybox VM's hostile_worker runs the
# supervisor with every capability and could not see that.
. /usr/lib/cfs-tests/systemd-lib.sh

CFS_FAULT_FILE=/run/cfs-fault
CFS_LOG_LEVEL=info
# Two serving workers and no spare, so the replacement of a killed worker serves.
CFS_SPARES=0
# The hostile fault point runs hostile.script from the blob directory; the data
# disk's is read-only, so the blobs this test reads are copied beside it.
CFS_BLOBS=/var/lib/cfsupervisor/blobs
mkdir -p "$CFS_BLOBS"
cp /data/blobs/img_b "$CFS_BLOBS/img_b"
printf 'ignore-pause => ok\n' > "$CFS_BLOBS/hostile.script"
chmod -R a+rX /var/lib/cfsupervisor

step "two serving workers; worker 1 is replaced by one that will ignore Pause"
systemd_start_supervisor 2
serving_pid() { cfsupervisor status | awk -v slot="$1" '$1 == slot && $2 == "pid" && $4 == "serving" { print $3 }'; }
w1=$(serving_pid 1)
[ -n "$w1" ] || fail "worker 1 is not serving: $(cfsupervisor status)"
printf 'hostile 1\n' > "$CFS_FAULT_FILE.new" && mv "$CFS_FAULT_FILE.new" "$CFS_FAULT_FILE"
kill -KILL "$w1"
dealt() { daemon_log | grep -q 'gets fault point hostile'; }
wait_for 20 dealt || fail "worker 1's replacement did not get the hostile fault point"
hostile=$(daemon_log | grep 'gets fault point hostile' | tail -n 1 | sed 's/.*(pid \([0-9]*\)).*/\1/')
rm -f "$CFS_FAULT_FILE"
hostile_serving() { [ "$(serving_pid 1)" = "$hostile" ]; }
wait_for 20 hostile_serving || fail "the hostile worker pid $hostile is not serving: $(cfsupervisor status)"
[ "$(stat -c %u "/proc/$hostile")" != 0 ] || fail "the hostile worker runs as root; the test needs another user"

step "worker 0 dies; the failover pauses the hostile worker, which hangs, and kills it after 5 s"
w0=$(serving_pid 0)
log "killing worker 0 (pid $w0)"
kill -KILL "$w0"
if ! wait_for 20 pid_gone "$hostile"; then
    show_journal
    fail "the hung worker pid $hostile still runs 20 s after the failover began: the supervisor could not kill it"
fi
daemon_log | grep "(pid $hostile[),]" | grep -q 'did not pause within 5 s; killing it' \
    || fail "no 'did not pause within 5 s; killing it' for pid $hostile: $(daemon_log | grep "pid $hostile" | tail -n 3)"
if daemon_log | grep -q 'sending SIGKILL'; then fail "a SIGKILL failed: $(daemon_log | grep 'sending SIGKILL' | head -n 1)"; fi
two_serving() { [ -n "$(serving_pid 0)" ] && [ -n "$(serving_pid 1)" ]; }
wait_for 20 two_serving || fail "not two serving workers after the failover: $(cfsupervisor status)"

step "the daemon serves: img_b reads right"
mount_erofs /mnt/b fsid=img_b
check_manifest /mnt/b "$CFS_MANIFESTS/img_b.sha256"
umount_bounded /mnt/b
systemd_stop_supervisor
