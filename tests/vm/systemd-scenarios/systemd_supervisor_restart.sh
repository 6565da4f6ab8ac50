# Issue 3, scenario 3: the supervisor itself dies (`systemctl kill -s KILL`) and is
# restarted (`systemctl restart`) while 8 readers are reading. systemd keeps the
# bound device in its fd store; each new supervisor takes it back, writes `restore`,
# and every reader completes with correct data and no error.
. /usr/lib/cfs-tests/systemd-lib.sh

big=big128
want=$(manifest_sha "$CFS_MANIFESTS/img_big.sha256" "$big")
[ -n "$want" ] || fail "test data: no $big in img_big's manifest"

step "start the unit with 2 workers and a spare"
CFS_LOG_LEVEL=info
systemd_start_supervisor 2
mount_erofs /mnt/big fsid=img_big
mount_erofs /mnt/a fsid=img_a
mkdir -p /mnt/ref
mount -t erofs -o ro,loop "$CFS_BLOBS/img_big" /mnt/ref || fail "loop mount of img_big failed"

# start_readers: 4 stream the 128 MiB file, 3 do random reads, 1 checks all of img_a,
# from an empty page cache.
start_readers() {
    rm -rf /tmp/r && mkdir -p /tmp/r
    sync
    echo 3 > /proc/sys/vm/drop_caches
    readers=
    for i in 1 2 3 4; do
        (sha256sum "/mnt/big/$big" > "/tmp/r/stream$i" 2> "/tmp/r/stream$i.err") &
        readers="$readers $!"
    done
    for i in 1 2 3; do
        (random_reads "/mnt/big/$big" "/mnt/ref/$big" 100 "/tmp/r/random$i") &
        readers="$readers $!"
    done
    (check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256" > /tmp/r/manifest 2>&1) &
    readers="$readers $!"
}

# check_readers WHAT: all readers finish (bounded) with correct data and no error.
check_readers() {
    _done() { for p in $readers; do pid_gone "$p" || return 1; done; }
    wait_for 300 _done || fail "$1: readers still running after 300 s"
    _bad=
    for p in $readers; do wait "$p" || _bad="$_bad pid $p exited non-zero;"; done
    for i in 1 2 3 4; do
        _got=$(cut -d' ' -f1 "/tmp/r/stream$i")
        [ "$_got" = "$want" ] || _bad="$_bad stream $i: '$_got' ($(head -n 1 "/tmp/r/stream$i.err"));"
    done
    for i in 1 2 3; do
        case "$(cat "/tmp/r/random$i")" in ok*) ;; *) _bad="$_bad random $i: $(cat "/tmp/r/random$i");" ;; esac
    done
    grep -q 'OK on /mnt/a' /tmp/r/manifest || _bad="$_bad img_a: $(tail -n 1 /tmp/r/manifest);"
    [ -z "$_bad" ] || fail "$1: readers:$_bad"
    log "$1: all 8 readers read correct data, no errors"
}

step "SIGKILL the whole unit (supervisor and workers) during reads"
start_readers
sleep 3
old=$CFS_SUP_PID
t0=$(now_cs)
systemctl kill -s KILL "$CFS_UNIT"
wait_restarted "$old"
log "systemd restarted the supervisor: pid $old -> $CFS_SUP_PID in $(elapsed "$t0")s"
check_readers "after systemctl kill -s KILL"

step "systemctl restart during reads"
start_readers
sleep 3
systemd_restart_supervisor
check_readers "after systemctl restart"
require_alive

step "the journal shows the device came back from the fd store, twice"
daemon_log > /tmp/daemon.log
n=$(grep -c "took /dev/cachefiles from systemd's fd store" /tmp/daemon.log || true)
[ "$n" -eq 2 ] || fail "expected 2 'took /dev/cachefiles from systemd's fd store' lines, the journal has $n"
n=$(grep -c 'restore written: requests the previous instance had taken' /tmp/daemon.log || true)
[ "$n" -eq 2 ] || fail "expected 2 'restore written' lines after restarts, the journal has $n"
n=$(grep -c 'bound /dev/cachefiles to cache' /tmp/daemon.log || true)
[ "$n" -eq 1 ] || fail "the device was bound $n times; the restarts must reuse the stored one"
echo "CFS-INFO: $(grep -E "took /dev/cachefiles|restore written: requests" /tmp/daemon.log | head -n 2 | tr '\n' '|')"

step "umount, stop"
umount /mnt/ref
umount_bounded /mnt/a
umount_bounded /mnt/big
systemd_stop_supervisor
