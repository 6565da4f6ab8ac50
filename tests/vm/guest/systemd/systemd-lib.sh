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
# The installed udev rule sets the mount's read-ahead here (systemd_smoke checks it);
# wait for udev to have handled the mount's new device before files are opened.
CFS_EROFS_RULE=/lib/udev/rules.d/60-cfsupervisor-erofs.rules
erofs_mounted() { timeout -s KILL 30 udevadm settle --timeout=20 || fail "udevadm settle failed after the mount"; }

# ---- remote blobs (systemd_remote_*, systemd_registry_*) -----------------------------

# write_nginx_conf: /etc/nginx/nginx.conf with the server blocks read from stdin
# inside its http block; nginx logs requests to /var/log/nginx/access.log unless a
# server block names its own access_log.
write_nginx_conf() {
    {
        printf 'user www-data;\nworker_processes 1;\npid /run/nginx.pid;\nerror_log /var/log/nginx/error.log;\n'
        printf 'events { worker_connections 64; }\nhttp {\n    access_log /var/log/nginx/access.log;\n'
        cat
        printf '}\n'
    } > /etc/nginx/nginx.conf
}

# serve_directory PORT DIR: nginx serves DIR (made world-readable) on 127.0.0.1:PORT
# and nothing else.
serve_directory() {
    chmod -R a+rX "$2"
    write_nginx_conf <<NGINX_END
    server {
        listen 127.0.0.1:$1;
        root $2;
    }
NGINX_END
    start_nginx
}

# link_blobs DIR BLOB...: DIR/blobs holds BLOB... of the data disk (symlinks), for
# nginx to serve; DIR is made world-readable.
link_blobs() {
    _dir=$1
    shift
    mkdir -p "$_dir/blobs"
    for _b in "$@"; do ln -sf "/data/blobs/$_b" "$_dir/blobs/$_b"; done
    chmod -R a+rX "$_dir"
}

# start_nginx: (re)starts nginx with the config write_nginx_conf wrote.
start_nginx() {
    systemctl restart nginx || { journalctl -b --no-pager -u nginx | tail -n 20; fail "nginx did not (re)start"; }
}

# allow_network: the drop-in an operator writes for remote blobs (README, "Remote
# blobs"): the unit's PrivateNetwork=, RestrictAddressFamilies= and IPAddressDeny=
# keep it off the network otherwise. localhost is 127.0.0.0/8: every server the
# scenarios run is on it.
allow_network() {
    mkdir -p /run/systemd/system/cfsupervisor.service.d
    printf '[Service]\nPrivateNetwork=no\nRestrictAddressFamilies=AF_INET AF_INET6\nIPAddressAllow=localhost\n' \
        > /run/systemd/system/cfsupervisor.service.d/remote.conf
    systemctl daemon-reload
}

# write_remote_config URL [LINE...]: write_config 1 with an empty local blob
# directory, blobs.url = URL and each LINE (TOML, e.g. 'credentials = "/x"') added
# to [blobs].
write_remote_config() {
    CFS_BLOBS=/var/lib/cfsupervisor/blobs
    write_config 1
    _lines="url = \"$1\""
    shift
    for _l in "$@"; do _lines="$_lines\\n$_l"; done
    sed -i "/^dir = \"\/var\/lib\/cfsupervisor\/blobs\"\$/a $_lines" "$CFS_CONFIG"
    grep -q "^url = \"" "$CFS_CONFIG" || fail "blobs.url not written into $CFS_CONFIG"
}

# mount_checked MOUNTPOINT FSID IMAGE: mounts FSID and checks every file against
# IMAGE's manifest.
mount_checked() {
    mount_erofs "$1" "fsid=$2"
    check_manifest "$1" "$CFS_MANIFESTS/$3.sha256"
}

# mount_refused MOUNTPOINT OPTIONS: the mount must fail, and within 30 s.
mount_refused() {
    mkdir -p "$1"
    _t0=$(now_cs)
    _st=0
    timeout -s KILL 30 mount -t erofs none -o "$2" "$1" 2> /tmp/mount.err || _st=$?
    [ "$_st" -ne 0 ] || fail "mount -o $2 succeeded; it should have failed"
    [ "$_st" -ne 137 ] || fail "mount -o $2 hung"
    log "mount -o $2 failed with status $_st in $(elapsed "$_t0")s: $(cat /tmp/mount.err)"
}

# read_fails_quickly FILE: reading FILE must fail with EIO, and within 30 s.
read_fails_quickly() {
    _t0=$(now_cs)
    _st=0
    timeout -s KILL 30 cat "$1" > /dev/null 2> /tmp/read.err || _st=$?
    log "reading $1: status $_st after $(elapsed "$_t0")s: $(cat /tmp/read.err)"
    [ "$_st" -ne 0 ] || fail "reading $1 succeeded; it should have failed"
    [ "$_st" -ne 137 ] || fail "reading $1 hung"
    grep -q 'Input/output error' /tmp/read.err || fail "reading $1 did not fail with EIO: $(cat /tmp/read.err)"
}

# failed_fetches: the count `cfsupervisor status` shows ("; N failed fetches").
failed_fetches() { cfsupervisor status | sed -n 's/.*; \([0-9]*\) failed fetches$/\1/p'; }

# Debian's docker-registry (distribution 2.8) with filesystem storage on 127.0.0.1.
CFS_REGISTRY_STORE=/var/lib/docker-registry
CFS_REGISTRY_REPO=cfs/images
CFS_REGISTRY_PORT=5000

# registry_add_blob FILE: puts FILE into the registry's storage as a blob of
# $CFS_REGISTRY_REPO (what a push would leave: the blob data, and the repository's
# link to it), and prints its digest.
registry_add_blob() {
    _hex=$(sha256sum "$1" | cut -d' ' -f1)
    _dir=$CFS_REGISTRY_STORE/docker/registry/v2/blobs/sha256/$(echo "$_hex" | cut -c1-2)/$_hex
    _link=$CFS_REGISTRY_STORE/docker/registry/v2/repositories/$CFS_REGISTRY_REPO/_layers/sha256/$_hex
    mkdir -p "$_dir" "$_link"
    ln -sf "$1" "$_dir/data"
    printf 'sha256:%s' "$_hex" > "$_link/link"
    echo "sha256:$_hex"
}

# start_registry: writes its config (YAML read from stdin is appended: auth, say)
# and starts it; fails unless it listens within 30 s.
start_registry() {
    chown -R docker-registry: "$CFS_REGISTRY_STORE"
    {
        printf 'version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\n' "$CFS_REGISTRY_STORE"
        printf 'http:\n  addr: 127.0.0.1:%s\n' "$CFS_REGISTRY_PORT"
        cat
    } > /etc/docker/registry/config.yml
    systemctl start docker-registry || { registry_log | tail -n 20; fail "docker-registry did not start"; }
    _registry_listening() { registry_log | grep -q "listening on 127.0.0.1:$CFS_REGISTRY_PORT"; }
    wait_for 30 _registry_listening || { registry_log | tail -n 20; fail "docker-registry is not listening"; }
}
registry_log() { journalctl -b --no-pager -o cat -u docker-registry; }
