# A second supervisor while one is bound exits non-zero within 10 s saying
# "already bound"; the first keeps serving.
. /cfs/lib.sh

step "start the first supervisor"
start_supervisor 1
workers=$(worker_pids)
step "start a second supervisor"
run_bounded 10 /tmp/second.out /tmp/second.err cfsupervisor run --config "$CFS_CONFIG"
echo "CFS-INFO: second supervisor: status $RB_STATUS after ${RB_SECONDS}s; stderr: $(head -n 3 /tmp/second.err | tr '\n' '|')"
[ "$RB_TIMED_OUT" -eq 0 ] || fail "second supervisor still running after 10s"
[ "$RB_STATUS" -ne 0 ] || fail "second supervisor exited with status 0"
grep -q 'already bound' /tmp/second.err \
    || fail "second supervisor's stderr lacks 'already bound': $(head -n 3 /tmp/second.err | tr '\n' '|')"
step "the first one still serves"
require_alive
[ "$(worker_pids)" = "$workers" ] || fail "worker pids changed: before '$workers', now '$(worker_pids)'"
mount_erofs /mnt/b fsid=img_b
check_manifest /mnt/b "$CFS_MANIFESTS/img_b.sha256"
mount_erofs /mnt/multi fsid=img_multi,device=img_multi_data
check_manifest /mnt/multi "$CFS_MANIFESTS/img_multi.sha256"
require_alive
