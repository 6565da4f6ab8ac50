# Helpers for the systemd VM scenarios (dash, coreutils, util-linux; no busybox).
# Scenarios run under `sh -e` and start with `. /usr/lib/cfs-tests/systemd-lib.sh`.
# This includes lib.sh, the helpers shared with the initramfs VM (check_manifest,
# mount_erofs, wait_for, fail, step, ...), and replaces what differs when systemd,
# not the scenario, runs the daemon: it is started through units/cfsupervisor.service
# with the config baked into the image, and its log is the unit's journal.
. /usr/lib/cfs-tests/lib.sh

CFS_UNIT=cfsupervisor.service
# The unit's --config; write_config [WORKERS] rewrites it (the root disk is a
# throwaway snapshot).
CFS_CONFIG=/etc/cfsupervisor/cfsupervisor.toml
CFS_STOP_TIMEOUT=${CFS_STOP_TIMEOUT:-60}

# The unit's journal is the daemon's log (supervisor and workers write to stderr).
daemon_log() { journalctl -b --no-pager -o cat -u "$CFS_UNIT"; }

unit_prop() { systemctl show -p "$1" --value "$CFS_UNIT"; }
unit_state() { echo "$(unit_prop ActiveState)/$(unit_prop SubState) (result $(unit_prop Result))"; }
unit_active() { [ "$(unit_prop ActiveState)" = active ]; }

# show_journal [LINES]: the unit's journal since boot, into the scenario's output.
show_journal() {
    echo "----- journalctl -b -u $CFS_UNIT (last ${1:-80} lines) -----"
    journalctl -b --no-pager -o short-monotonic -u "$CFS_UNIT" | tail -n "${1:-80}"
    echo "-----"
}

# unit_fail MESSAGE: a failure of the unit itself; shows what the daemon and systemd
# said before failing the scenario.
unit_fail() {
    show_journal 80
    systemctl status --no-pager --lines=0 "$CFS_UNIT" || true
    fail "$*"
}

# The daemon is alive while the unit is active with the main pid we recorded; a
# restart that systemd did by itself (Restart=on-failure) shows as a new main pid.
supervisor_alive() {
    [ -n "$CFS_SUP_PID" ] && unit_active && [ "$(unit_prop MainPID)" = "$CFS_SUP_PID" ] \
        && kill -0 "$CFS_SUP_PID" 2>/dev/null
}

# Fails unless the workers are in the unit's cgroup (so systemd stops them with it).
require_workers_in_unit() {
    _w=$(worker_pids)
    [ -n "$_w" ] || fail "no cfsupervisor-worker processes"
    for _p in $_w; do
        grep -q "/$CFS_UNIT\$" "/proc/$_p/cgroup" \
            || fail "worker $_p is not in $CFS_UNIT's cgroup: $(cat "/proc/$_p/cgroup")"
    done
}

# systemd_start_supervisor [WORKERS]: `systemctl start` (with WORKERS, after
# rewriting the config), which for this Type=notify unit returns once the daemon sent
# READY=1; fails unless the unit is then active. Sets CFS_SUP_PID to its main pid.
systemd_start_supervisor() {
    [ -z "${1:-}" ] || write_config "$1"
    mkdir -p "$CFS_CACHE_DIR"
    [ -e /dev/cachefiles ] || fail "/dev/cachefiles does not exist"
    log "systemctl start $CFS_UNIT"
    _t0=$(now_cs)
    _st=0
    timeout -s KILL "$CFS_READY_TIMEOUT" systemctl start "$CFS_UNIT" || _st=$?
    unit_active || unit_fail "systemctl start $CFS_UNIT (status $_st): unit is $(unit_state)"
    CFS_SUP_PID=$(unit_prop MainPID)
    log "$CFS_UNIT active after $(elapsed "$_t0")s: main pid $CFS_SUP_PID, status '$(unit_prop StatusText)', workers: $(worker_pids)"
}

# systemd_restart_supervisor: `systemctl restart`; fails unless the unit is active
# again with a new main pid.
systemd_restart_supervisor() {
    _old=$CFS_SUP_PID
    log "systemctl restart $CFS_UNIT (main pid $_old)"
    _t0=$(now_cs)
    _st=0
    timeout -s KILL "$((CFS_STOP_TIMEOUT + CFS_READY_TIMEOUT))" systemctl restart "$CFS_UNIT" || _st=$?
    unit_active || unit_fail "systemctl restart $CFS_UNIT (status $_st): unit is $(unit_state)"
    CFS_SUP_PID=$(unit_prop MainPID)
    [ "$CFS_SUP_PID" != "$_old" ] || unit_fail "systemctl restart $CFS_UNIT: main pid is still $_old"
    log "$CFS_UNIT active again after $(elapsed "$_t0")s: main pid $CFS_SUP_PID, workers: $(worker_pids)"
}

# wait_restarted OLD_PID: systemd restarted the supervisor by itself (after it died
# or hung): the unit is active again under a new main pid, within 60 s. Sets
# CFS_SUP_PID to it.
wait_restarted() {
    _old_pid=$1
    _restarted() {
        _p=$(unit_prop MainPID)
        unit_active && [ "$_p" != "$_old_pid" ] && [ "$_p" != 0 ]
    }
    wait_for 60 _restarted || unit_fail "the unit did not come back after its supervisor $_old_pid died: $(unit_state)"
    CFS_SUP_PID=$(unit_prop MainPID)
}

# systemd_stop_supervisor: `systemctl stop`; fails unless the unit ends inactive (the
# daemon exited 0 on SIGTERM, not "failed") and no worker is left. Sets
# CFS_SUP_STATUS to the daemon's exit status.
systemd_stop_supervisor() {
    log "systemctl stop $CFS_UNIT (main pid $CFS_SUP_PID)"
    _t0=$(now_cs)
    _st=0
    timeout -s KILL "$CFS_STOP_TIMEOUT" systemctl stop "$CFS_UNIT" || _st=$?
    CFS_SUP_STATUS=$(unit_prop ExecMainStatus)
    [ "$(unit_prop ActiveState)" = inactive ] \
        || unit_fail "systemctl stop $CFS_UNIT (status $_st): unit is $(unit_state), daemon exit status $CFS_SUP_STATUS"
    _no_workers() { [ -z "$(worker_pids)" ]; }
    wait_for 10 _no_workers || fail "workers left after $CFS_UNIT stopped: $(worker_pids)"
    log "$CFS_UNIT stopped after $(elapsed "$_t0")s; daemon exit status $CFS_SUP_STATUS"
    CFS_SUP_PID=
}

# lib.sh's versions run the daemon outside any unit; here the unit runs it, so that
# helpers written for the initramfs VM mean the same thing in this one.
start_supervisor() { systemd_start_supervisor "$@"; }
stop_supervisor() { systemd_stop_supervisor; }
