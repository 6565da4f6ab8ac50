# The benchmark's part that needs systemd (scripts/bench.sh runs it in the systemd
# test VM after bench/guest/bench.sh): recovery after the supervisor itself dies.
# `systemctl kill -s KILL` ends supervisor and workers during random reads; systemd
# restarts the unit, the new supervisor takes the device from the fd store and
# writes `restore`. What a reader sees is its longest read: one per restart.
. /usr/lib/cfs-tests/systemd-lib.sh

RESTARTS=10
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
