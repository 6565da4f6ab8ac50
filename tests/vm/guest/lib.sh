# Helpers for the VM scenarios (busybox sh). Scenarios run under `sh -e` and start
# with `. /cfs/lib.sh`. Every helper that detects a problem calls fail, which records
# the reason for /init and exits the scenario non-zero.

CFS_LOG=/tmp/supervisor.log
CFS_CONFIG=/tmp/cfsupervisor.toml
CFS_BLOBS=/data/blobs
CFS_MANIFESTS=/data/manifests
CFS_EXPECT=/data/expect
CFS_CACHE_DIR=/cache/fscache
CFS_TAG=cfs
CFS_READY_TIMEOUT=${CFS_READY_TIMEOUT:-60}
CFS_MOUNT_TIMEOUT=${CFS_MOUNT_TIMEOUT:-60}
CFS_SUP_PID=
TAB=$(printf '\t')

# Seconds since boot, with hundredths.
now() { cut -d' ' -f1 /proc/uptime; }
# Whole seconds since boot.
now_s() { _n=$(now); echo "${_n%.*}"; }
# Hundredths of a second since boot (for durations).
now_cs() { _n=$(now); echo "${_n%.*}${_n#*.}" | sed 's/^0*//;s/^$/0/'; }
# Duration from a now_cs value to now, as "S.CC".
elapsed() { _d=$(( $(now_cs) - $1 )); printf '%d.%02d' $((_d / 100)) $((_d % 100)); }

log() { echo "[$(now)] $*"; }

# Records what the scenario is doing, so /init can name it if a command fails
# under `sh -e` without an explicit fail.
step() { echo "$*" > /run/cfs-step; log "== $*"; }

fail() {
    echo "$*" > /run/cfs-fail-reason
    log "FAIL: $*"
    exit 1
}

# wait_for SECONDS CMD [ARGS...]: runs CMD every 0.2 s until it succeeds; returns 1
# if it has not succeeded after SECONDS.
wait_for() {
    _limit=$1
    shift
    _deadline=$(( $(now_s) + _limit ))
    while :; do
        if "$@"; then return 0; fi
        [ "$(now_s)" -lt "$_deadline" ] || return 1
        sleep 0.2
    done
}

# write_config [WORKERS]
write_config() {
    cat > "$CFS_CONFIG" <<EOF
[cache]
dir = "$CFS_CACHE_DIR"
tag = "$CFS_TAG"
${CFS_CULL_BELOW:+cull_below_percent = $CFS_CULL_BELOW}
${CFS_CULL_UNTIL:+cull_until_percent = $CFS_CULL_UNTIL}
${CFS_REFUSE_BELOW:+refuse_below_percent = $CFS_REFUSE_BELOW}
[blobs]
dir = "$CFS_BLOBS"
[workers]
count = ${1:-1}
spares = ${CFS_SPARES:-1}
${CFS_READ_AHEAD_KIB:+read_ahead_kib = $CFS_READ_AHEAD_KIB}
[log]
level = "${CFS_LOG_LEVEL:-debug}"
EOF
    [ -z "${CFS_CONTROL_GROUP:-}" ] || printf '[control]\ngroup = "%s"\n' "$CFS_CONTROL_GROUP" >> "$CFS_CONFIG"
    # Test builds only (CFS_FAULT_INJECTION): see common/fault_point.h.
    [ -z "${CFS_FAULT_FILE:-}" ] || printf '[testing]\nfault_file = "%s"\n' "$CFS_FAULT_FILE" >> "$CFS_CONFIG"
}

# Whether $1 is one sha256: 64 lowercase hex digits.
is_sha256() { case "$1" in *[!0-9a-f]*) return 1 ;; esac; [ ${#1} -eq 64 ]; }

# manifest_sha MANIFEST PATH: the sha256 MANIFEST lists for PATH. Fails if it lists
# none (or several): an empty expected hash would equal an empty computed one.
manifest_sha() {
    _ms=$(grep "  $2\$" "$1" | cut -d' ' -f1)
    is_sha256 "$_ms" || fail "$(basename "$1") lists no single sha256 for $2: '$_ms'"
    echo "$_ms"
}

# file_sha FILE: the sha256 of FILE. Returns non-zero if reading it fails, for
# `x=$(file_sha F) || fail ...`: in `sha256sum F | cut`, the status would be cut's.
file_sha() {
    _fs=$(sha256sum "$1") || return 1
    _fs=${_fs%% *}
    is_sha256 "$_fs" || return 1
    echo "$_fs"
}

# Everything the daemon (supervisor and workers) logged so far.
daemon_log() { cat "$CFS_LOG"; }

# Not kill -0: the supervisor is our child, and one that died stays a zombie (which
# kill -0 finds) until we wait for it.
supervisor_alive() { [ -n "$CFS_SUP_PID" ] && ! pid_gone "$CFS_SUP_PID"; }
supervisor_ready() { grep -q 'ready:' "$CFS_LOG" 2>/dev/null; }
supervisor_ready_or_dead() { supervisor_ready || ! supervisor_alive; }

# start_supervisor [WORKERS]: writes the config, starts `cfsupervisor run` in the
# background (log in $CFS_LOG, pid in $CFS_SUP_PID) and waits for its `ready:` line.
start_supervisor() {
    write_config "${1:-1}"
    mkdir -p "$CFS_CACHE_DIR"
    [ -e /dev/cachefiles ] || fail "/dev/cachefiles does not exist"
    # A fresh log per start, so "ready:" is this start's; earlier ones are kept.
    if [ -s "$CFS_LOG" ]; then cat "$CFS_LOG" >> /tmp/supervisor-earlier.log; : > "$CFS_LOG"; fi
    log "starting cfsupervisor with ${1:-1} worker(s)"
    cfsupervisor run --config "$CFS_CONFIG" >> "$CFS_LOG" 2>&1 &
    CFS_SUP_PID=$!
    _t0=$(now_cs)
    if ! wait_for "$CFS_READY_TIMEOUT" supervisor_ready_or_dead; then
        fail "supervisor (pid $CFS_SUP_PID) not ready after ${CFS_READY_TIMEOUT}s"
    fi
    if ! supervisor_ready; then
        _st=0
        wait "$CFS_SUP_PID" || _st=$?
        fail "supervisor exited with status $_st before logging ready:"
    fi
    log "supervisor pid $CFS_SUP_PID ready after $(elapsed "$_t0")s; workers: $(worker_pids)"
}

# stop_supervisor [SECONDS]: SIGTERM, wait (bounded) for it to exit; fails if it
# does not, or if its exit status is not 0 (a supervisor that crashed on its way
# out is no clean stop). Sets CFS_SUP_STATUS to its exit status.
stop_supervisor() {
    [ -n "$CFS_SUP_PID" ] || fail "stop_supervisor: no supervisor started"
    log "stopping supervisor pid $CFS_SUP_PID"
    kill -TERM "$CFS_SUP_PID" 2>/dev/null || true
    wait_for "${1:-20}" pid_gone "$CFS_SUP_PID" \
        || fail "supervisor pid $CFS_SUP_PID still running ${1:-20}s after SIGTERM"
    CFS_SUP_STATUS=0
    wait "$CFS_SUP_PID" || CFS_SUP_STATUS=$?
    log "supervisor exited with status $CFS_SUP_STATUS"
    [ "$CFS_SUP_STATUS" -eq 0 ] || fail "supervisor pid $CFS_SUP_PID exited with status $CFS_SUP_STATUS after SIGTERM"
    CFS_SUP_PID=
}

# A process is gone once it is not there or is a zombie.
pid_gone() {
    [ -d "/proc/$1" ] || return 0
    _state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -z "$_state" ] || [ "$_state" = Z ]
}

# Space-separated worker pids, sorted (empty if none).
worker_pids() { pidof cfsupervisor-worker 2>/dev/null | tr ' ' '\n' | sort -n | tr '\n' ' ' | sed 's/ $//'; }
worker_count() { set -- $(worker_pids); echo $#; }
# The pid of a worker that is serving, from `cfsupervisor status` (which slots serve
# depends on the order the workers said Ready, not on their pids).
# For the benchmark (bench/guest/): a cold page cache, and the daemon's CPU time in
# ticks (1/100 s): the supervisor, its reaped children and its live workers.
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
daemon_ticks() {
    set -- $(cut -d' ' -f14-17 "/proc/$CFS_SUP_PID/stat")
    _t=$(($1 + $2 + $3 + $4))
    for _p in $(worker_pids); do
        set -- $(cut -d' ' -f14,15 "/proc/$_p/stat" 2>/dev/null || echo 0 0)
        _t=$((_t + $1 + $2))
    done
    echo "$_t"
}

# Whether every worker slot (serving wanted plus spares) has a worker serving or
# paused as a spare: no replacement still starting.
workers_at_strength() {
    cfsupervisor status | awk '$1 == "Workers:" { want = $2 + $5 }
        $2 == "pid" && ($4 == "serving" || $4 == "paused") { n++ }
        END { exit !(want > 0 && n >= want) }'
}
serving_worker_pid() { cfsupervisor status | awk '$2 == "pid" && $4 == "serving" { print $3; exit }'; }

# How many failovers the supervisor has logged through to their first READ answered.
failovers_answered() { daemon_log | grep -c 'answered the first READ' || true; }

# kill_serving_worker WHAT READER READER_ERR KILL_TIMES: a benchmark's timed
# failover. Once a spare stands by again (each kill one failure, not a second one
# while the daemon still replaces the worker killed before), SIGKILLs the serving
# worker and waits for the supervisor to log the first READ answered after it.
# Nothing of ours runs meanwhile: checks fork processes, which competed with the
# recovery for the VM's two CPUs (measured: p50 10 ms with them, 7 ms without).
# WHAT names the kill in a failure; READER, the reader (stderr in READER_ERR) that
# must outlive it. The kill's CLOCK_MONOTONIC time is appended to KILL_TIMES
# (cfs-bench-read kill; its reader `rand-kills` matches it with its reads).
kill_serving_worker() {
    wait_for 20 workers_at_strength || fail "the workers were not back to strength 20 s before $1"
    _recovered=$(failovers_answered)
    _victim=$(serving_worker_pid)
    [ -n "$_victim" ] || fail "no serving worker to kill ($1)"
    # (It returns 1 s after the kill: see cfs-bench-read.)
    cfs-bench-read kill "$_victim" >> "$4" || fail "killing worker $_victim ($1)"
    _recovered_since() { [ "$(failovers_answered)" -gt "$_recovered" ]; }
    wait_for 20 _recovered_since || fail "no recovery logged 20 s after $1"
    pid_gone "$2" && fail "the reader ended during $1: $(cat "$3")"
    return 0
}

# stop_kill_reader PID OUT ERR: stops a `cfs-bench-read rand-kills` reader (stdout in
# OUT, stderr in ERR), fails if it saw an error, and sets KILL_READER_STALLED to its
# view of each kill since it started: its longest read that ended in the 500 ms
# after the kill, in us, comma-separated. (Not run in a subshell: it waits for
# the reader, a child of this shell.)
stop_kill_reader() {
    kill -TERM "$1"
    _st=0
    wait "$1" 2>/dev/null || _st=$?
    [ ! -s "$3" ] || fail "the reader saw an error: $(head -n 1 "$3")"
    [ "$_st" -eq 0 ] || fail "the reader ended with status $_st"
    KILL_READER_STALLED=$(sed -n 's/.*"stalled_read_us":\[\([^]]*\)\].*/\1/p' "$2")
    [ -n "$KILL_READER_STALLED" ] || fail "the reader timed no kill: $(cat "$2")"
}

require_alive() {
    supervisor_alive || fail "supervisor (pid $CFS_SUP_PID) is not running"
}

# mount_erofs MOUNTPOINT OPTIONS: mounts in fscache mode; fails on error or if the
# mount does not return within CFS_MOUNT_TIMEOUT seconds.
mount_erofs() {
    mkdir -p "$1"
    log "mount -t erofs none -o $2 $1"
    _st=0
    timeout -s KILL "$CFS_MOUNT_TIMEOUT" mount -t erofs none -o "$2" "$1" || _st=$?
    [ "$_st" -eq 0 ] || fail "mount -o $2 $1 failed (status $_st)"
    erofs_mounted
}

# fresh_bench WORKERS: a new supervisor on an empty cache directory, the bench image
# mounted at /mnt/bench (the benchmark and the profile, bench/guest/).
fresh_bench() {
    grep -q ' /mnt/bench ' /proc/mounts && umount_bounded /mnt/bench
    [ -z "$CFS_SUP_PID" ] || stop_supervisor 30
    rm -rf "$CFS_CACHE_DIR"
    start_supervisor "$1"
    mount_erofs /mnt/bench fsid=bench
}

# The read-ahead units/60-cfsupervisor-erofs.rules has udev give erofs mounts without
# a block device (the rule's value, read from the installed file).
erofs_rule_read_ahead_kib() {
    sed -n 's/.*KERNEL=="erofs-\*".*ATTR{read_ahead_kb}="\([0-9]*\)".*/\1/p' "$CFS_EROFS_RULE"
}
CFS_EROFS_RULE=${CFS_EROFS_RULE:-/cfs/60-cfsupervisor-erofs.rules}

# set_read_ahead_kib KIB BDI_DIR...: the read-ahead of each backing device named
# (/sys/class/bdi/*); a pattern that matched nothing is skipped.
set_read_ahead_kib() {
    _kib=$1
    shift
    for _bdi in "$@"; do
        [ ! -e "$_bdi/read_ahead_kb" ] || echo "$_kib" > "$_bdi/read_ahead_kb" || fail "setting $_bdi/read_ahead_kb"
    done
}

# After each mount_erofs. This guest has no udev, so it does what the rule does
# (systemd-lib.sh leaves it to the real udev). CFS_MOUNT_READ_AHEAD_KIB=N sets N
# instead; "kernel" keeps the kernel's default.
erofs_mounted() {
    [ "${CFS_MOUNT_READ_AHEAD_KIB:-}" != kernel ] || return 0
    _kib=${CFS_MOUNT_READ_AHEAD_KIB:-$(erofs_rule_read_ahead_kib)}
    [ -n "$_kib" ] || fail "no read_ahead_kb for erofs-* in $CFS_EROFS_RULE"
    set_read_ahead_kib "$_kib" /sys/class/bdi/erofs-*
}

# umount_bounded MOUNTPOINT
umount_bounded() {
    log "umount $1"
    _st=0
    timeout -s KILL "$CFS_MOUNT_TIMEOUT" umount "$1" || _st=$?
    [ "$_st" -eq 0 ] || fail "umount $1 failed (status $_st)"
}

# check_manifest MOUNTPOINT MANIFEST [partial]: every file of MANIFEST (sha256sum
# lines, relative paths) must match; fails naming the first mismatching file and
# what sha256sum said about it. Unless "partial", the set of regular files under
# MOUNTPOINT must equal the manifest's, and the symlinks listed in MANIFEST's
# .symlinks companion must all be there with the same readlink targets.
check_manifest() {
    _mp=$1 _man=$2
    [ -s "$_man" ] || fail "manifest $_man is missing or empty"
    _t0=$(now_cs)
    _out=/tmp/check.$$.out _err=/tmp/check.$$.err
    _st=0
    (cd "$_mp" && sha256sum -c "$_man") > "$_out" 2> "$_err" || _st=$?
    _bad=$(grep -v ': OK$' "$_out" | head -n 1)
    _nok=$(grep -c ': OK$' "$_out" || true)
    _nman=$(wc -l < "$_man")
    if [ "$_st" -ne 0 ] || [ -n "$_bad" ] || [ "$_nok" -ne "$_nman" ]; then
        _why=$(head -n 1 "$_err")
        fail "manifest $(basename "$_man") on $_mp: first mismatch: ${_bad:-none} (${_why:-no message}; $_nok/$_nman OK, status $_st)"
    fi
    rm -f "$_out" "$_err"
    if [ "${3:-}" != partial ]; then
        (cd "$_mp" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) > /tmp/check.$$.have
        cut -c 67- "$_man" | LC_ALL=C sort > /tmp/check.$$.want
        if ! cmp -s /tmp/check.$$.have /tmp/check.$$.want; then
            _d=$(diff /tmp/check.$$.want /tmp/check.$$.have | grep '^[-+][^-+]' | head -n 3 | tr '\n' ' ')
            fail "regular files on $_mp differ from $(basename "$_man"): $_d"
        fi
        rm -f /tmp/check.$$.have /tmp/check.$$.want
        check_symlinks "$_mp" "${_man%.sha256}.symlinks"
    fi
    log "manifest $(basename "$_man") OK on $_mp ($_nman files, $(elapsed "$_t0")s)"
}

# check_symlinks MOUNTPOINT LIST: "path<TAB>target" lines; also the number of
# symlinks under MOUNTPOINT must equal the list's.
check_symlinks() {
    [ -f "$2" ] || fail "symlink list $2 missing"
    _n=0
    while IFS="$TAB" read -r _p _t; do
        [ -n "$_p" ] || continue
        [ -L "$1/$_p" ] || fail "$1/$_p is not a symlink"
        _got=$(readlink "$1/$_p") || fail "readlink $1/$_p failed"
        [ "$_got" = "$_t" ] || fail "symlink $1/$_p -> '$_got', expected '$_t'"
        _n=$((_n + 1))
    done < "$2"
    _have=$(find "$1" -type l | wc -l)
    [ "$_have" -eq "$_n" ] || fail "$1 has $_have symlinks, $(basename "$2") lists $_n"
}

# Fails unless the kernel has what the scenarios need.
check_kernel() {
    [ -c /dev/cachefiles ] || fail "/dev/cachefiles is missing (CONFIG_CACHEFILES_ONDEMAND?)"
    grep -qw erofs /proc/filesystems || fail "erofs is not in /proc/filesystems"
    grep -qw ext4 /proc/filesystems || fail "ext4 is not in /proc/filesystems"
}

# The worker's copy buffer (worker/aligned_bytes.h) is backed by huge pages in the
# worker that read: both of its 2 MiB halves.
check_copy_buffer_huge() {
    _best=0
    for _p in $(worker_pids); do
        _k=$(sed -n 's/^AnonHugePages:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$_p/smaps_rollup")
        [ "${_k:-0}" -le "$_best" ] || _best=$_k
    done
    [ "$_best" -ge 4096 ] || fail "no worker's copy buffer is in huge pages (the most AnonHugePages: $_best kB)"
    log "copy buffer: $_best kB of huge pages in the worker that read"
}
# check_blob_direct NAME: some worker has blob NAME open, and every fd it has on it
# was opened O_DIRECT (worker/local_backend.cc: a blob on a filesystem that takes
# direct I/O, as ext4 does, is read without the page cache).
check_blob_direct() {
    _seen=0
    for _p in $(worker_pids); do
        for _fd in /proc/$_p/fd/*; do
            case "$(readlink "$_fd" 2>/dev/null)" in */"$1") ;; *) continue ;; esac
            _flags=$(sed -n 's/^flags:[[:space:]]*//p' "/proc/$_p/fdinfo/${_fd##*/}")
            [ $((_flags & 040000)) -ne 0 ] || fail "worker $_p has blob $1 open without O_DIRECT (flags $_flags)"
            _seen=$((_seen + 1))
        done
    done
    [ "$_seen" -gt 0 ] || fail "no worker has blob $1 open"
    log "blob $1: $_seen fd(s) in the workers, all O_DIRECT"
}

# Number of open fds of a process.
fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# run_bounded SECONDS OUT ERR CMD [ARGS...]: runs CMD in the background with stdout
# in OUT and stderr in ERR; waits at most SECONDS for it. Sets RB_STATUS (its exit
# status, or 137 once killed), RB_TIMED_OUT (1 if it had to be killed) and
# RB_SECONDS (how long it ran). Never fails by itself.
run_bounded() {
    _rb_limit=$1 _rb_out=$2 _rb_err=$3
    shift 3
    _rb_t0=$(now_cs)
    "$@" > "$_rb_out" 2> "$_rb_err" &
    _rb_pid=$!
    RB_TIMED_OUT=0
    if ! wait_for "$_rb_limit" pid_gone "$_rb_pid"; then
        RB_TIMED_OUT=1
        kill -KILL "$_rb_pid" 2>/dev/null || true
    fi
    RB_STATUS=0
    wait "$_rb_pid" || RB_STATUS=$?
    RB_SECONDS=$(elapsed "$_rb_t0")
}

# The images of multi_mount: two fsids, a bootstrap with an extra data blob, and
# two bootstraps sharing one data blob in one domain.
CFS_DOMAIN=cfsdom
mount_all_images() {
    mount_erofs /mnt/a fsid=img_a
    mount_erofs /mnt/b fsid=img_b
    mount_erofs /mnt/multi fsid=img_multi,device=img_multi_data
    mount_erofs /mnt/dom1 "domain_id=$CFS_DOMAIN,fsid=img_dom1,device=img_dom_data"
    mount_erofs /mnt/dom2 "domain_id=$CFS_DOMAIN,fsid=img_dom2,device=img_dom_data"
    _n=$(grep -c '^[^ ]* /mnt/[^ ]* erofs ' /proc/mounts || true)
    [ "$_n" -eq 5 ] || fail "expected 5 erofs mounts, /proc/mounts has $_n"
}
check_all_images() {
    check_manifest /mnt/b "$CFS_MANIFESTS/img_b.sha256"
    check_manifest /mnt/multi "$CFS_MANIFESTS/img_multi.sha256"
    check_manifest /mnt/dom1 "$CFS_MANIFESTS/img_dom1.sha256"
    check_manifest /mnt/dom2 "$CFS_MANIFESTS/img_dom2.sha256"
    check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
}
umount_all_images() {
    for _m in a b multi dom1 dom2; do umount_bounded "/mnt/$_m"; done
}

# concurrent_readers MOUNTPOINT MANIFEST N [SECONDS]: N background sha256sum -c
# readers started together on MOUNTPOINT; reader i checks every N-th file of the
# manifest (offset i) plus the biggest file, in its own random order. All must
# finish within SECONDS (default 600) and all must pass.
concurrent_readers() {
    _cr_mp=$1 _cr_man=$2 _cr_n=$3 _cr_limit=${4:-600}
    _cr_dir=/tmp/readers
    rm -rf "$_cr_dir" && mkdir -p "$_cr_dir"
    _cr_big=$(cat "$CFS_EXPECT/img_a.big_file")
    _i=0
    while [ "$_i" -lt "$_cr_n" ]; do
        awk -v n="$_cr_n" -v i="$_i" -v big="$_cr_big" \
            '(NR - 1) % n == i || substr($0, 67) == big' "$_cr_man" \
            | shuf > "$_cr_dir/$_i.manifest"
        _i=$((_i + 1))
    done
    _cr_t0=$(now_cs)
    _cr_pids=
    _i=0
    while [ "$_i" -lt "$_cr_n" ]; do
        (cd "$_cr_mp" && exec sha256sum -c "$_cr_dir/$_i.manifest") \
            > "$_cr_dir/$_i.out" 2> "$_cr_dir/$_i.err" &
        _cr_pids="$_cr_pids $!"
        _i=$((_i + 1))
    done
    log "started $_cr_n readers on $_cr_mp:$_cr_pids"
    _cr_all_done() { for _p in $_cr_pids; do pid_gone "$_p" || return 1; done; }
    if ! wait_for "$_cr_limit" _cr_all_done; then
        _left=
        for _p in $_cr_pids; do pid_gone "$_p" || _left="$_left $_p"; done
        fail "readers still running after ${_cr_limit}s:$_left"
    fi
    _i=0 _cr_bad=
    for _p in $_cr_pids; do
        _st=0
        wait "$_p" || _st=$?
        _want=$(wc -l < "$_cr_dir/$_i.manifest")
        _ok=$(grep -c ': OK$' "$_cr_dir/$_i.out" || true)
        log "reader $_i (pid $_p): status $_st, $_ok/$_want OK"
        if [ "$_st" -ne 0 ] || [ "$_ok" -ne "$_want" ]; then
            _first=$(grep -v ': OK$' "$_cr_dir/$_i.out" | head -n 1)
            _msg=$(head -n 1 "$_cr_dir/$_i.err")
            _cr_bad="${_cr_bad:+$_cr_bad; }reader $_i status $_st $_ok/$_want OK, first bad: ${_first:-?} (${_msg:-no message})"
        fi
        _i=$((_i + 1))
    done
    [ -z "$_cr_bad" ] || fail "concurrent readers: $_cr_bad"
    log "$_cr_n concurrent readers OK in $(elapsed "$_cr_t0")s"
}

# ---- failover helpers ----

# random_reads FILE REFERENCE COUNT OUT: COUNT reads of 1 to 3 4-KiB blocks at random
# block offsets of FILE, each compared with the same range of REFERENCE (the same
# data read another way). Writes "ok N" or the first mismatch to OUT; exits non-zero
# on a mismatch or a read error.
random_reads() {
    _rr_blocks=$(( $(wc -c < "$2") / 4096 ))
    awk -v n="$3" -v max="$_rr_blocks" -v seed="$$" \
        'BEGIN { srand(seed); for (i = 0; i < n; i++) print int(rand() * (max - 3)), 1 + int(rand() * 3) }' \
        > "$4.offsets"
    _rr_ok=0
    while read -r _rr_off _rr_cnt; do
        if ! dd if="$1" bs=4096 skip="$_rr_off" count="$_rr_cnt" of="$4.got" 2> "$4.err"; then
            echo "read error at block $_rr_off: $(tail -n 1 "$4.err")" > "$4"
            return 1
        fi
        dd if="$2" bs=4096 skip="$_rr_off" count="$_rr_cnt" of="$4.want" 2> /dev/null
        if ! cmp -s "$4.got" "$4.want"; then
            echo "wrong data at block $_rr_off (+$_rr_cnt)" > "$4"
            return 1
        fi
        _rr_ok=$((_rr_ok + 1))
    done < "$4.offsets"
    echo "ok $_rr_ok" > "$4"
}

# ---- readers that run across a failure (kill storms, restarts, the watchdog) ----
# img_big's 128 MiB file, through the daemon at /mnt/big and, for random_reads, the
# same image on a loop device at /mnt/ref (the caller mounts both).
CFS_BIG=big128

# start_readers STREAMS RANDOMS [BLOCKS] [IMG_A_MOUNT]: from an empty page cache,
# STREAMS readers sha256sum the whole file and RANDOMS readers compare BLOCKS
# (default 100) random ranges with /mnt/ref; with IMG_A_MOUNT one more checks all of
# img_a mounted there. Their pids are in $readers; check_readers checks them.
start_readers() {
    _sr_streams=$1 _sr_randoms=$2 _sr_blocks=${3:-100} _sr_imga=${4:-}
    rm -rf /tmp/r && mkdir -p /tmp/r
    sync
    echo 3 > /proc/sys/vm/drop_caches
    readers=
    _i=1
    while [ "$_i" -le "$_sr_streams" ]; do
        (sha256sum "/mnt/big/$CFS_BIG" > "/tmp/r/stream$_i" 2> "/tmp/r/stream$_i.err") &
        readers="$readers $!"
        _i=$((_i + 1))
    done
    _i=1
    while [ "$_i" -le "$_sr_randoms" ]; do
        (random_reads "/mnt/big/$CFS_BIG" "/mnt/ref/$CFS_BIG" "$_sr_blocks" "/tmp/r/random$_i") &
        readers="$readers $!"
        _i=$((_i + 1))
    done
    if [ -n "$_sr_imga" ]; then
        (check_manifest "$_sr_imga" "$CFS_MANIFESTS/img_a.sha256" > /tmp/r/manifest 2>&1) &
        readers="$readers $!"
    fi
    log "started readers:$readers ($_sr_streams streaming, $_sr_randoms random${_sr_imga:+, img_a at $_sr_imga})"
}

readers_left() { _n=0; for _p in $readers; do pid_gone "$_p" || _n=$((_n + 1)); done; echo "$_n"; }

# check_readers WHAT [SECONDS]: every reader start_readers started finishes within
# SECONDS (default 300), exits 0 and read exactly the right bytes.
check_readers() {
    _cr_done() { [ "$(readers_left)" -eq 0 ]; }
    wait_for "${2:-300}" _cr_done || fail "$1: $(readers_left) readers still running after ${2:-300} s"
    _want=$(manifest_sha "$CFS_MANIFESTS/img_big.sha256" "$CFS_BIG")
    _bad=
    for _p in $readers; do wait "$_p" || _bad="$_bad pid $_p exited non-zero;"; done
    _i=1
    while [ "$_i" -le "$_sr_streams" ]; do
        _got=$(cut -d' ' -f1 "/tmp/r/stream$_i")
        [ "$_got" = "$_want" ] || _bad="$_bad stream $_i: '$_got' ($(head -n 1 "/tmp/r/stream$_i.err"));"
        _i=$((_i + 1))
    done
    _i=1
    while [ "$_i" -le "$_sr_randoms" ]; do
        case "$(cat "/tmp/r/random$_i")" in ok*) ;; *) _bad="$_bad random $_i: $(cat "/tmp/r/random$_i");" ;; esac
        _i=$((_i + 1))
    done
    if [ -n "$_sr_imga" ]; then
        grep -q "OK on $_sr_imga" /tmp/r/manifest || _bad="$_bad img_a: $(tail -n 1 /tmp/r/manifest);"
    fi
    [ -z "$_bad" ] || fail "$1: readers:$_bad"
    log "$1: every reader read correct data, no errors"
}

# failover_figures LOG: the recovery times the supervisor logged ("worker N answered
# the first READ X ms after worker M died"), as "count, min/median/max ms".
failover_figures() {
    grep -o 'answered the first READ [0-9.]* ms after' "$1" | awk '{ print $5 }' | sort -n \
        | awk '{ v[NR] = $1 } END { if (NR == 0) { print "none"; exit }
                 printf "%d failovers timed, min %.1f ms, median %.1f ms, max %.1f ms\n", NR, v[1], v[int((NR + 1) / 2)], v[NR] }'
}

# The cache disk's free space as cachefiles counts it (blocks available to
# unprivileged users), in percent of the filesystem (the cache_full scenarios).
cache_free_percent() { df -k /cache | awk 'NR == 2 { print int($4 * 100 / $2) }'; }

# filler_kib PERCENT: how many KiB a filler takes to leave the cache disk PERCENT%
# free (0 or less: it has less already).
filler_kib() { df -k /cache | awk -v p="$1" 'NR == 2 { print int($4 - $2 * p / 100) }'; }

# fill_cache_to PERCENT: a filler file (/cache/filler) takes the cache disk down to
# PERCENT% free.
fill_cache_to() {
    _fill_mib=$(( $(filler_kib "$1") / 1024 ))
    [ "$_fill_mib" -gt 0 ] || fail "the cache disk has less than $1% free already"
    dd if=/dev/zero of=/cache/filler bs=1M count="$_fill_mib" conv=fsync 2> /dev/null || fail "writing the filler"
    # (Not checked here: the supervisor may cull before this returns. Its log line,
    # which expect_cull waits for, says the cache was under its cull limit.)
    log "filler of $_fill_mib MiB: $(cache_free_percent)% free"
}

# fill_cache_at_once_to PERCENT: as fill_cache_to, but with fallocate, which takes
# the room in one step rather than over seconds of writing: the supervisor's check
# (once a second) cannot cull during it.
fill_cache_at_once_to() {
    _fill_kib=$(filler_kib "$1")
    [ "$_fill_kib" -gt 0 ] || fail "the cache disk has less than $1% free already"
    fallocate -l "$((_fill_kib * 1024))" /cache/filler || fail "allocating the filler"
    log "filler of $((_fill_kib / 1024)) MiB allocated: $(cache_free_percent)% free"
}

# cache_full_steps: what both cache_full scenarios check once the supervisor runs
# (started outside a unit or by it), with the limits of write_config
# (CFS_CULL_BELOW, CFS_CULL_UNTIL, CFS_REFUSE_BELOW, or the defaults 7, 10 and 3):
# status shows them; img_big read whole and unmounted, so its cache file is no
# image's; a filler takes the cache disk to 2% below the cull limit; the supervisor
# culls back to the run limit; img_a then reads right.
cache_full_steps() {
    _below=${CFS_CULL_BELOW:-7}
    _until=${CFS_CULL_UNTIL:-10}
    step "status shows the cache's room and the limits ($_below%, $_until%, ${CFS_REFUSE_BELOW:-3}%)"
    cfsupervisor status > /tmp/cache_status.txt || fail "cfsupervisor status failed"
    grep 'Cache room:' /tmp/cache_status.txt | sed 's/^/CFS-INFO: /'
    grep -Eq "Cache room: [0-9.]+% of blocks free, [0-9.]+% of files; culls below $_below% up to $_until%; writes refused below ${CFS_REFUSE_BELOW:-3}%" \
        /tmp/cache_status.txt || fail "status does not show the cache's room and limits: $(cat /tmp/cache_status.txt)"

    step "read img_big whole, then unmount it"
    mount_erofs /mnt/big fsid=img_big
    check_manifest /mnt/big "$CFS_MANIFESTS/img_big.sha256"
    umount_bounded /mnt/big
    log "cache disk: $(cache_free_percent)% free"

    step "a filler takes the cache disk to $((_below - 2))% free"
    fill_cache_to $((_below - 2))

    step "the supervisor culls img_big's cache file, back to $_until% free"
    expect_cull "$_below" "$_until"

    step "img_a reads whole, with no error"
    mount_erofs /mnt/a fsid=img_a
    check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
    log "after img_a: $(cache_free_percent)% free"
    umount_bounded /mnt/a
    rm -f /cache/filler
    require_alive
}

# expect_cull BELOW UNTIL: the supervisor logs a cull within 20 s
# (supervisor/cache_cull.h), and the cache is back at its run limit (UNTIL% free).
expect_cull() {
    _cull_below=$1
    _culled() { daemon_log | grep -q "had less than $_cull_below% free: culled [1-9][0-9]* cache file"; }
    wait_for 20 _culled || fail "nothing culled 20 s after the cache went below $1% free: $(daemon_log | tail -n 5)"
    daemon_log | grep 'culled' | sed 's/^/CFS-INFO: /'
    [ "$(cache_free_percent)" -ge "$2" ] || fail "only $(cache_free_percent)% free after culling, below the run limit $2%"
}
