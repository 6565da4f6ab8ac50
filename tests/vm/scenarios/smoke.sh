# The kernel has cachefiles on-demand and erofs; the daemon serves img_a.
. /cfs/lib.sh

step "kernel features"
check_kernel
# THP as some distributions ship it: only for memory that asks (the kernel's own
# default is "always", where a worker would get them unasked).
thp=/sys/kernel/mm/transparent_hugepage/enabled
[ -f "$thp" ] || fail "the kernel has no transparent huge pages"
echo madvise > "$thp"
step "start the supervisor"
start_supervisor 1
step "mount img_a"
mount_erofs /mnt/a fsid=img_a
step "cold read of the 64 MiB file"
big=$(cat "$CFS_EXPECT/img_a.big_file")
want=$(manifest_sha "$CFS_MANIFESTS/img_a.sha256" "$big")
t0=$(now_cs)
got=$(file_sha "/mnt/a/$big") || fail "reading /mnt/a/$big failed"
echo "CFS-INFO: cold read + sha256 of the 64 MiB file through the daemon: $(elapsed "$t0")s"
[ "$got" = "$want" ] || fail "$big: sha256 $got, expected $want"
step "verify img_a"
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
step "the worker reads the blob with direct I/O"
check_blob_direct img_a
step "the worker's copy buffer is in huge pages"
check_copy_buffer_huge
require_alive
step "umount img_a"
umount_bounded /mnt/a
require_alive
step "SIGTERM stops the supervisor and its workers"
stop_supervisor 20
no_workers() { [ -z "$(worker_pids)" ]; }
wait_for 10 no_workers || fail "worker processes left after the supervisor exited: $(worker_pids)"
echo "CFS-INFO: supervisor exit status after SIGTERM: $CFS_SUP_STATUS"
step "SIGKILL of the supervisor takes its workers with it (PR_SET_PDEATHSIG)"
start_supervisor 1
workers=$(worker_pids)
[ -n "$workers" ] || fail "no workers running"
kill -KILL "$CFS_SUP_PID"
wait "$CFS_SUP_PID" 2>/dev/null || true
CFS_SUP_PID=
wait_for 5 no_workers || fail "workers outlived their SIGKILLed supervisor: $(worker_pids) (were $workers)"
log "workers $workers died with the supervisor"
