# The benchmark's parts that need systemd (scripts/bench.sh runs it in the systemd
# test VM after bench/guest/bench.sh):
# - Recovery after the supervisor itself dies. `systemctl kill -s KILL` ends
#   supervisor and workers during random reads; systemd restarts the unit, the new
#   supervisor takes the device from the fd store and writes `restore`. What a reader
#   sees is its longest read: one per restart.
# - Remote blobs (issue 7; nginx is in this VM's image): cold_seq and cold_small of
#   the bench image served by nginx on the guest's loopback through `[blobs] url`,
#   then cold_seq again with a chunk manifest (every 1 MiB chunk checked), each
#   against the same workload on the local blob in this VM and run. nginx reads the
#   same file on the cache disk the local figure reads. And worker kills during
#   random reads of the remote blob: the failover's time to the first READ answered,
#   and how many HEAD requests nginx saw during the failovers.
. /usr/lib/cfs-tests/systemd-lib.sh

RESTARTS=${CFS_BENCH_RESTARTS:-10}
REMOTE_KILLS=${CFS_BENCH_REMOTE_KILLS:-20}
BIG=big/file256m
CFS_BLOBS=/cache/blobs
mkdir -p "$CFS_BLOBS"
cp /data/blobs/bench "$CFS_BLOBS/bench" || fail "copying the bench blob to the cache disk"
CFS_LOG_LEVEL=info
systemd_start_supervisor 1
mount_erofs /mnt/bench fsid=bench

stalls_ms=
i=0
while [ "$i" -lt "$RESTARTS" ]; do
    step "supervisor restart $((i + 1)) of $RESTARTS during random reads"
    cfs-bench-read rand "/mnt/bench/$BIG" 100000000 "$((i + 11))" 8 > /tmp/restart_reader.out \
        2> /tmp/restart_reader.err &
    reader=$!
    sleep 1
    old=$CFS_SUP_PID
    systemctl kill -s KILL "$CFS_UNIT"
    wait_restarted "$old"
    st=0
    wait "$reader" || st=$?
    [ "$st" -eq 0 ] || fail "the reader failed across restart $((i + 1)): $(cat /tmp/restart_reader.err)"
    out=$(cat /tmp/restart_reader.out)
    log "restart $((i + 1)): $out"
    max=$(echo "$out" | sed 's/.*"max_us":\([0-9.]*\).*/\1/')
    stalls_ms="${stalls_ms:+$stalls_ms,}$(awk -v us="$max" 'BEGIN { printf "%.1f", us / 1000 }')"
    i=$((i + 1))
done
echo "BENCH: {\"workload\":\"supervisor_restart\",\"workers\":1,\"longest_read_ms\":[$stalls_ms]}"
umount_bounded /mnt/bench
systemd_stop_supervisor

# ---- remote blobs ----
# fresh_mount: a new supervisor (config as written) on an empty cache directory, the
# image mounted.
fresh_mount() {
    grep -q ' /mnt/bench ' /proc/mounts && umount_bounded /mnt/bench
    systemctl is-active --quiet "$CFS_UNIT" && systemd_stop_supervisor
    rm -rf "$CFS_CACHE_DIR"
    systemd_start_supervisor
    mount_erofs /mnt/bench fsid=bench
}
# timed CMD...: the reader's JSON and the daemon's CPU ticks, on a cold page cache.
timed() {
    drop_caches
    _c0=$(daemon_ticks)
    _out=$("$@") || fail "$* failed"
    echo "$_out $(( $(daemon_ticks) - _c0 ))"
}
# remote_row NAME LOCAL_FIGURE REMOTE_FIGURE: one BENCH line, the local figure inside
# (a figure is "JSON TICKS", the reader's JSON having no spaces).
remote_row() {
    set -- "$1" $2 $3
    echo "BENCH: {\"workload\":\"$1\",\"workers\":1,\"daemon_cpu_ticks\":$5,\"result\":$4,\"local\":{\"daemon_cpu_ticks\":$3,\"result\":$2}}"
    log "$1: local $2, remote $4"
}
check_big() {
    got=$(sha256sum "/mnt/bench/$BIG" | cut -d' ' -f1)
    [ "$got" = "$(cut -d' ' -f1 /data/expect/bench.sha256)" ] || fail "$BIG read wrong ($1)"
}

step "remote blobs: the local figures first (1 worker, blob on the cache disk)"
write_config 1
fresh_mount
local_seq=$(timed cfs-bench-read seq "/mnt/bench/$BIG")
check_big "local"
fresh_mount
local_small=$(timed cfs-bench-read tree /mnt/bench/small)

step "remote blobs: the same from nginx on 127.0.0.1"
www=/srv/cfs-www
port=8080
mkdir -p "$www/blobs"
ln -sf "$CFS_BLOBS/bench" "$www/blobs/bench"
chmod -R a+rX "$www" "$CFS_BLOBS"
serve_directory "$port" "$www"
allow_network
local_blobs=$CFS_BLOBS
write_remote_config "http://localhost:$port/blobs/"
mkdir -p "$CFS_BLOBS"
[ ! -e "$CFS_BLOBS/bench" ] || fail "$CFS_BLOBS/bench exists: the remote figures would read it"
fresh_mount
remote_seq=$(timed cfs-bench-read seq "/mnt/bench/$BIG")
check_big "remote"
grep -q '"GET /blobs/bench HTTP/1.1" 206' /var/log/nginx/access.log || fail "nginx served no range of bench"
remote_row remote_cold_seq "$local_seq" "$remote_seq"
fresh_mount
remote_small=$(timed cfs-bench-read tree /mnt/bench/small)
remote_row remote_cold_small "$local_small" "$remote_small"

step "remote blobs: $REMOTE_KILLS worker kills during random reads"
# As bench.sh times a failover (kill_serving_worker, lib.sh), on the remote blob: one
# supervisor takes all the kills (a supervisor's first failover is slower in this VM,
# bench.sh says why), and every 10 kills start on an empty cache, the image mounted
# again under a new name for the same blob (bench-N, another name nginx serves).
heads() { grep -c '"HEAD /blobs/bench[-0-9]* HTTP/1.1"' /var/log/nginx/access.log || true; }
remote_ms= remote_stalled= reader= heads_during=0
stop_reader() {
    stop_kill_reader "$reader" /tmp/rf_reader.out /tmp/rf_reader.err
    remote_stalled=${remote_stalled:+$remote_stalled,}$KILL_READER_STALLED
}
i=0
while [ "$i" -lt "$REMOTE_KILLS" ]; do
    if [ $((i % 10)) -eq 0 ]; then
        if [ -z "$reader" ]; then
            fresh_mount
        else
            stop_reader
            umount_bounded /mnt/bench
            ln -sf "$local_blobs/bench" "$www/blobs/bench-$i"
            mount_erofs /mnt/bench "fsid=bench-$i"
        fi
        : > /tmp/rf_kill_times
        cfs-bench-read rand-kills "/mnt/bench/$BIG" "$((31 + i))" /tmp/rf_kill_times \
            > /tmp/rf_reader.out 2> /tmp/rf_reader.err &
        reader=$!
        sleep 1
    fi
    heads_before=$(heads)
    kill_serving_worker "remote kill $i" "$reader" /tmp/rf_reader.err /tmp/rf_kill_times
    heads_during=$((heads_during + $(heads) - heads_before))
    ms=$(daemon_log | grep -o 'answered the first READ [0-9.]* ms after' | tail -n 1 | awk '{ print $5 }')
    remote_ms=${remote_ms:+$remote_ms,}$ms
    i=$((i + 1))
done
stop_reader
echo "BENCH: {\"workload\":\"remote_failover\",\"workers\":1,\"recovery_ms\":[$remote_ms],\"stalled_read_us\":[$remote_stalled],\"heads\":$heads_during}"

step "remote blobs: cold_seq with a chunk manifest (1 MiB chunks)"
{
    echo "cfs-chunks 1"
    echo "chunk_size 1048576"
    echo "size $(stat -c %s "$local_blobs/bench")"
    split -b 1048576 --filter=sha256sum "$local_blobs/bench"
} > "$CFS_BLOBS/bench.chunks"
chmod 644 "$CFS_BLOBS/bench.chunks"
fresh_mount
chunked_seq=$(timed cfs-bench-read seq "/mnt/bench/$BIG")
daemon_log | grep -q "blob bench: checked by chunks of 1048576 bytes" || fail "the worker did not use bench.chunks"
check_big "remote, chunks checked"
remote_row remote_cold_seq_chunks "$local_seq" "$chunked_seq"
rm -f "$CFS_BLOBS/bench.chunks"
umount_bounded /mnt/bench
systemd_stop_supervisor
systemctl stop nginx
