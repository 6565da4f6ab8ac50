# Debian 12's systemd is PID 1 and runs cfsupervisor through units/cfsupervisor.service
# as shipped: `systemctl start` returns with the unit active (Type=notify, so only
# after READY=1), img_a mounts (udev gives it the read-ahead of the installed rule,
# units/60-cfsupervisor-erofs.rules) and reads right, `systemctl restart` brings up a new
# daemon, the mount still reads right and a new mount is served by the new daemon,
# `systemctl stop` ends it cleanly.
# The re-read after the restart starts with an empty page cache, so it goes to the
# cache: that works only if the bound device fd survived the restart in systemd's
# fd store (without it the old cache is withdrawn at the restart, and reads of the
# mount fail with ENOBUFS).
. /usr/lib/cfs-tests/systemd-lib.sh

step "systemd is PID 1"
pid1=$(cat /proc/1/comm)
[ "$pid1" = systemd ] || fail "PID 1 is '$pid1', not systemd"
log "$(systemctl --version | head -n 1); system state: $(systemctl is-system-running || true)"
check_kernel

# The image holds a `cmake --install` (build-root-image.sh): the unit, the binaries,
# and what sysusers.d and tmpfiles.d made at boot are where a package puts them.
step "the installed layout"
frag=$(unit_prop FragmentPath)
case "$frag" in
    /lib/systemd/system/cfsupervisor.service|/usr/lib/systemd/system/cfsupervisor.service) ;;
    *) fail "$CFS_UNIT is loaded from '$frag', not systemd's system unit directory" ;;
esac
exe=$(unit_prop ExecStart | sed -n 's/.*path=\([^ ;]*\).*/\1/p')
[ "$exe" = /usr/bin/cfsupervisor ] || fail "the unit runs '$exe', expected /usr/bin/cfsupervisor"
[ "$(command -v cfsupervisor)" = /usr/bin/cfsupervisor ] || fail "cfsupervisor is not /usr/bin/cfsupervisor on PATH"
[ -x /usr/libexec/cfsupervisor/cfsupervisor-worker ] || fail "no worker in /usr/libexec/cfsupervisor"
[ -d /var/lib/cfsupervisor/blobs ] || fail "tmpfiles.d did not create /var/lib/cfsupervisor/blobs at boot"
getent passwd cfsupervisor-worker > /dev/null || fail "sysusers.d did not create cfsupervisor-worker"
[ -f /usr/share/man/man8/cfsupervisor.8 ] || fail "no cfsupervisor(8) man page"

step "systemctl start $CFS_UNIT"
systemd_start_supervisor
[ "$(unit_prop Type)" = notify ] || fail "$CFS_UNIT is Type=$(unit_prop Type), expected notify"
# The daemon's own STATUS= (sent with READY=1) reached systemd.
[ "$(unit_prop StatusText)" = serving ] || unit_fail "unit status text is '$(unit_prop StatusText)', expected 'serving'"
require_workers_in_unit
# CacheDirectory= and RuntimeDirectory= of the unit.
[ -d /var/cache/cfsupervisor ] || fail "the unit did not create /var/cache/cfsupervisor (CacheDirectory=)"
[ -d /run/cfsupervisor ] || fail "the unit did not create /run/cfsupervisor (RuntimeDirectory=)"
# The unit's hardening is in force on the daemon: a seccomp filter (SystemCallFilter=;
# mode 2), / read-only and the cache disk writable in its mount namespace
# (ProtectSystem=strict, ReadWritePaths=/cache from the image's drop-in).
grep -q '^Seccomp:[[:space:]]*2$' "/proc/$CFS_SUP_PID/status" \
    || fail "the daemon runs without a seccomp filter: $(grep '^Seccomp' "/proc/$CFS_SUP_PID/status")"
mount_opts() { awk -v m="$1" '$5 == m { split($6, o, ","); print o[1] }' "/proc/$CFS_SUP_PID/mountinfo" | tail -n 1; }
[ "$(mount_opts /)" = ro ] || fail "/ is '$(mount_opts /)' for the daemon, expected ro (ProtectSystem=strict)"
[ "$(mount_opts /cache)" = rw ] || fail "/cache is '$(mount_opts /cache)' for the daemon, expected rw (ReadWritePaths=)"

step "mount img_a and verify it"
mount_erofs /mnt/a fsid=img_a
# udev gave the mount the read-ahead of the installed rule (the kernel's is 128 KiB).
want=$(erofs_rule_read_ahead_kib)
[ -n "$want" ] && [ "$want" != 128 ] || fail "no read-ahead other than the kernel's in $CFS_EROFS_RULE: '$want'"
bdis=$(ls -d /sys/class/bdi/erofs-* 2>/dev/null) || fail "img_a's mount has no erofs-* backing device"
for b in $bdis; do
    [ "$(cat "$b/read_ahead_kb")" = "$want" ] \
        || fail "$b has read_ahead_kb $(cat "$b/read_ahead_kb"), not the udev rule's $want"
done
log "udev set read_ahead_kb $want on $bdis"
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
require_alive

step "systemctl restart $CFS_UNIT"
systemd_restart_supervisor
require_workers_in_unit

step "the mount still reads correctly after the restart"
sync
echo 3 > /proc/sys/vm/drop_caches
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
require_alive

step "the new daemon serves a new mount"
mount_erofs /mnt/b fsid=img_b
check_manifest /mnt/b "$CFS_MANIFESTS/img_b.sha256"
require_alive

step "umount, systemctl stop $CFS_UNIT"
umount_bounded /mnt/b
umount_bounded /mnt/a
left_before=$(daemon_log | grep -c 'leaving: ' || true)
systemd_stop_supervisor
# KillMode=mixed: only the supervisor gets SIGTERM; it closes the workers'
# connections and each leaves on its own, none killed by systemd's signal.
left_after=$(daemon_log | grep -c 'leaving: ' || true)
[ "$left_after" -gt "$left_before" ] \
    || fail "no worker left on its own at systemctl stop: $(daemon_log | tail -n 15)"
! daemon_log | grep -q 'did not stop within' || fail "a worker had to be killed at stop"
