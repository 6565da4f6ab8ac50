# vm_cache_full under the installed unit (its sandbox: ProtectSystem=strict, the
# system call filter, the capability bounding set), with limits of its own in the
# config (cull below 12% free, up to 16%; the kernel refuses writes below 2%): the
# kernel takes them at bind, a cache taken to 10% free is culled by the supervisor
# back above 16% (supervisor/cache_cull.h), and the next image reads right. Then:
# a reload changes when the supervisor culls, but not where the kernel refuses
# writes (it counted that at bind); a restart keeps the cache's bound limit, says
# so, and culls above it; a reload back to it is accepted.
. /usr/lib/cfs-tests/systemd-lib.sh

# reload_limits CHANGES LIMITS: writes the config from CFS_CULL_BELOW, CFS_CULL_UNTIL
# and CFS_REFUSE_BELOW, reloads, and checks that the reload named CHANGES and that
# status shows LIMITS ("culls below ...").
reload_limits() {
    write_config 1
    cfsupervisor reload > /tmp/reload_limits.out 2> /tmp/reload_limits.err \
        || fail "a reload of the cull limits failed: $(cat /tmp/reload_limits.out /tmp/reload_limits.err)"
    grep -q "$1" /tmp/reload_limits.out || fail "the reload does not name the changes: $(cat /tmp/reload_limits.out)"
    cfsupervisor status | grep -q "$2" || fail "status does not show the reloaded limits: $(cfsupervisor status)"
}

step "start the unit"
CFS_LOG_LEVEL=info
CFS_CULL_BELOW=12
CFS_CULL_UNTIL=16
CFS_REFUSE_BELOW=2
systemd_start_supervisor 1
cache_full_steps

step "reload: the cull limits change, the refusal limit is refused by name"
CFS_REFUSE_BELOW=4
write_config 1
st=0
cfsupervisor reload > /tmp/reload_refuse.out 2> /tmp/reload_refuse.err || st=$?
cat /tmp/reload_refuse.out /tmp/reload_refuse.err
[ "$st" -eq 1 ] || fail "a reload changing cache.refuse_below_percent exited $st, expected 1"
grep -q 'cache.refuse_below_percent cannot change while cfsupervisor runs (2 -> 4)' /tmp/reload_refuse.err \
    || fail "the refusal does not name cache.refuse_below_percent: $(cat /tmp/reload_refuse.err)"
CFS_REFUSE_BELOW=2
CFS_CULL_BELOW=9
CFS_CULL_UNTIL=20
reload_limits 'cache.cull_below_percent 12 -> 9; cache.cull_until_percent 16 -> 20' \
    'culls below 9% up to 20%; writes refused below 2%'

step "restart with a lower refusal limit and cull limit: the cache keeps the one it was bound with, culling fits it"
CFS_REFUSE_BELOW=1
CFS_CULL_BELOW=2
write_config 1
systemd_restart_supervisor
_warned() {
    daemon_log | grep -q 'cachefiles refuses cache writes below 2% free, as when the cache was bound; the config now says cache.refuse_below_percent = 1' &&
        daemon_log | grep -q 'culling starts below 3% and frees up to 20% instead of the configured 2% and 20%'
}
wait_for 10 _warned || fail "no warnings that the bound refusal limit stays and culling fits it: $(daemon_log | tail -n 5)"
cfsupervisor status | grep -q 'culls below 3% up to 20%; writes refused below 2%' \
    || fail "status after the restart does not show the fitted limits: $(cfsupervisor status)"

step "reload back to the bound refusal limit is accepted"
CFS_REFUSE_BELOW=2
CFS_CULL_BELOW=9
reload_limits 'cache.cull_below_percent 2 -> 9; cache.refuse_below_percent 1 -> 2' \
    'culls below 9% up to 20%; writes refused below 2%'
systemd_stop_supervisor
