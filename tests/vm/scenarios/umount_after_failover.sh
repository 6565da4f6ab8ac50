# An image unmounted after a failover gets its object closed all the same: the
# kernel's CLOSE reaches a worker, and every copy of the anon fd (the supervisor's,
# the spare's) is closed, as umount_close checks without a failover.
# Found 2026-11-27: a worker started while the image was mounted (the replacement
# here) copied its mount into the worker's mount namespace, which held it after the
# umount, so the kernel never withdrew the object: 30 s later the supervisor, the
# serving worker and the spare still held its anon fd. Workers now detach every
# copied mount (worker/sandbox.cc); on the initramfs root of this VM, where only
# chroot works, they had all stayed. A second image lies under a tmpfs mounted on
# the same path: the replacement must detach both mounts of that stack.
. /cfs/lib.sh

cachefiles_fds() {
    _n=0
    for p in $CFS_SUP_PID $(worker_pids); do
        _n=$((_n + $(ls -l "/proc/$p/fd" 2>/dev/null | grep -c 'anon_inode:\[cachefiles\]')))
    done
    echo "$_n"
}

step "start the supervisor with 1 worker and a spare; mount and read two images, a tmpfs over one"
start_supervisor 1
mount_erofs /mnt/b fsid=img_b
check_manifest /mnt/b "$CFS_MANIFESTS/img_b.sha256"
mount_erofs /mnt/a fsid=img_a
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
mount -t tmpfs none /mnt/a || fail "mounting a tmpfs over /mnt/a"
log "cachefiles anon fds while mounted: $(cachefiles_fds)"
[ "$(cachefiles_fds)" -gt 0 ] || fail "no anon fd held while mounted"

step "kill the serving worker; the spare takes over"
victim=$(serving_worker_pid)
[ -n "$victim" ] || fail "no serving worker"
kill -KILL "$victim"
gone() { pid_gone "$victim"; }
wait_for 10 gone || fail "worker $victim outlived SIGKILL"
wait_for 20 workers_at_strength || fail "the workers were not back to strength after killing worker $victim"
drop_caches
check_manifest /mnt/b "$CFS_MANIFESTS/img_b.sha256"
log "cachefiles anon fds after the failover: $(cachefiles_fds)"

step "umount; every copy of the objects' anon fds is closed"
umount_bounded /mnt/b
umount_bounded /mnt/a
umount_bounded /mnt/a
none_left() { [ "$(cachefiles_fds)" -eq 0 ]; }
wait_for 30 none_left || fail "$(cachefiles_fds) cachefiles anon fds still open 30 s after umount: $(daemon_log | tail -n 20)"
log "cachefiles anon fds after umount: 0"
require_alive
