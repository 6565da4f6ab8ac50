# img_trunc is an image cut to half its size. The files before the cut verify; the
# files after it fail to read with an error, within a bounded time; the daemon
# (supervisor and workers, same pids) survives and keeps serving.
. /cfs/lib.sh

step "start the supervisor"
start_supervisor 1
pids_before="$CFS_SUP_PID / $(worker_pids)"
step "mount img_trunc"
mount_erofs /mnt/trunc fsid=img_trunc
step "files before the cut verify"
check_manifest /mnt/trunc "$CFS_MANIFESTS/img_trunc.sha256" partial
step "files after the cut fail to read"
missing=$(cat "$CFS_EXPECT/img_trunc.missing")
[ -n "$missing" ] || fail "test data: no files after the cut"
first=$(echo "$missing" | head -n 1)
last=$(echo "$missing" | tail -n 1)
for f in $first $last $first; do
    run_bounded 60 /tmp/trunc_cat.out /tmp/trunc_cat.err cat "/mnt/trunc/$f"
    msg=$(head -n 1 /tmp/trunc_cat.err)
    echo "CFS-INFO: cat $f (data after the cut): status $RB_STATUS after ${RB_SECONDS}s, $(wc -c < /tmp/trunc_cat.out) bytes out, stderr: ${msg:-<empty>}"
    [ "$RB_TIMED_OUT" -eq 0 ] || fail "cat of $f (data after the cut) did not return within 60s"
    [ "$RB_STATUS" -ne 0 ] || fail "cat of $f (data after the cut) succeeded ($(wc -c < /tmp/trunc_cat.out) bytes)"
    # What the kernel does (the same as erofs on a loop device over the truncated
    # image, see baseline.sh): the read fails at once with EIO.
    case "$msg" in *"Input/output error"*) ;; *) fail "cat of $f failed, but not with EIO: ${msg:-<empty>}" ;; esac
done
step "the daemon survives"
require_alive
pids_after="$CFS_SUP_PID / $(worker_pids)"
[ "$pids_after" = "$pids_before" ] || fail "pids changed: before '$pids_before', after '$pids_after'"
step "files before the cut still verify; img_b still serves"
check_manifest /mnt/trunc "$CFS_MANIFESTS/img_trunc.sha256" partial
mount_erofs /mnt/b fsid=img_b
check_manifest /mnt/b "$CFS_MANIFESTS/img_b.sha256"
umount_bounded /mnt/b
umount_bounded /mnt/trunc
require_alive
pids_after="$CFS_SUP_PID / $(worker_pids)"
[ "$pids_after" = "$pids_before" ] || fail "pids changed: before '$pids_before', after '$pids_after'"
