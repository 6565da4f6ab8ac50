# Mounting an fsid whose blob does not exist fails cleanly, the worker logs why,
# and the daemon keeps serving.
. /cfs/lib.sh

name=$(cat "$CFS_EXPECT/missing_blob_name")
[ -n "$name" ] && [ ! -e "$CFS_BLOBS/$name" ] || fail "test data: blob '$name' should be absent"
step "start the supervisor"
start_supervisor 1
workers=$(worker_pids)
step "mount the absent blob $name"
mkdir -p /mnt/missing
run_bounded "$CFS_MOUNT_TIMEOUT" /tmp/missing_mount.out /tmp/missing_mount.err \
    mount -t erofs none -o "fsid=$name" /mnt/missing
echo "CFS-INFO: mount -o fsid=$name: status $RB_STATUS after ${RB_SECONDS}s, stderr: $(head -n 1 /tmp/missing_mount.err)"
[ "$RB_TIMED_OUT" -eq 0 ] || fail "mount of the absent blob $name hung for ${CFS_MOUNT_TIMEOUT}s"
[ "$RB_STATUS" -ne 0 ] || fail "mount of the absent blob $name succeeded"
! grep -q ' /mnt/missing ' /proc/mounts || fail "/mnt/missing is mounted"
step "the log names the blob and the error"
logged() { grep -F "blob \"$name\"" "$CFS_LOG" | grep -q 'No such file or directory'; }
wait_for 10 logged || fail "no log line with 'blob \"$name\"' and 'No such file or directory'"
log "log line: $(grep -F "blob \"$name\"" "$CFS_LOG" | head -n 1)"
step "img_a still mounts and verifies"
require_alive
mount_erofs /mnt/a fsid=img_a
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
require_alive
[ "$(worker_pids)" = "$workers" ] || fail "worker pids changed: before '$workers', now '$(worker_pids)'"
