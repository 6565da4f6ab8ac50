# vm_cache_full under the installed unit (its sandbox: ProtectSystem=strict, the
# system call filter, the capability bounding set): a cache taken to 5% free is
# culled by the supervisor back above 10% (supervisor/cache_cull.h), and the next
# image reads right.
. /usr/lib/cfs-tests/systemd-lib.sh

step "start the unit"
CFS_LOG_LEVEL=info
systemd_start_supervisor 1
cache_full_steps
systemd_stop_supervisor
