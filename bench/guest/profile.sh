# Where the time of a sequential read goes, by process and kernel or user symbol:
# run in the VM by scripts/profile.sh (a kernel with perf events, perf in the
# initramfs). For each worker count in CFS_PROFILE_WORKERS (1), CFS_PROFILE_ROUNDS
# (3) rounds of: the blob file's direct read, cold_seq and warm_seq through a fresh
# daemon, each under `perf record -a` (cpu-clock: TCG has no PMU). Prints, per
# workload, the samples of every process and of every symbol with 0.5% or more,
# summed over the rounds, as "PROFILE ..." lines.
. /cfs/lib.sh
command -v perf > /dev/null || fail "no perf in this initramfs (scripts/profile.sh adds it)"
CFS_BLOBS=/cache/blobs
mkdir -p "$CFS_BLOBS"
cp /data/blobs/bench "$CFS_BLOBS/bench" || fail "copying the bench blob to the cache disk"
BIG=big/file256m
CFS_LOG_LEVEL=info
MOUNT_READ_AHEAD_KIB=$(erofs_rule_read_ahead_kib)
set_read_ahead_kib "$MOUNT_READ_AHEAD_KIB" /sys/class/bdi/*

# record NAME CMD...: CMD on a cold page cache under perf, its figures logged.
record() {
    _name=$1
    shift
    drop_caches
    perf record -a -F 2000 -o "/cache/$_name.perf" -- "$@" > /tmp/profile.out 2> /tmp/perf.err ||
        fail "perf record of $_name: $(tail -n 1 /tmp/perf.err)"
    log "$_name: $(cat /tmp/profile.out)"
}

# report LABEL FILES...: the samples of FILES summed by process and by symbol.
report() {
    _label=$1
    shift
    for _f in "$@"; do
        perf report -i "$_f" --stdio -n --no-children --sort comm,sym -g none 2> /dev/null | grep -v '^#' | grep -v '^$'
    done | awk -v l="$_label" '
        { n = $2; s[$3 " " $5] += n; c[$3] += n; t += n }
        END {
            printf "PROFILE %s total %d samples\n", l, t
            for (k in c) printf "PROFILE %s comm %-16s %6d %5.1f%%\n", l, k, c[k], 100 * c[k] / t
            for (k in s) if (s[k] * 200 >= t) printf "PROFILE %s sym %-56s %6d %5.1f%%\n", l, k, s[k], 100 * s[k] / t
        }' | sort -k2,2 -k3,3 -k5,5nr
}

step "warm-up"
dd if=/dev/zero of=/cache/fill bs=4M oflag=direct 2> /dev/null || true
rm -f /cache/fill
sync
drop_caches
cfs-bench-read seq "$CFS_BLOBS/bench" > /dev/null || fail "warm-up: reading the blob file"

for n in ${CFS_PROFILE_WORKERS:-1}; do
    step "profile with $n worker(s)"
    r=0
    while [ "$r" -lt "${CFS_PROFILE_ROUNDS:-3}" ]; do
        fresh_bench "$n"
        record "direct.$n.$r" cfs-bench-read seq "$CFS_BLOBS/bench"
        record "cold_seq.$n.$r" cfs-bench-read seq "/mnt/bench/$BIG"
        record "warm_seq.$n.$r" cfs-bench-read seq "/mnt/bench/$BIG"
        r=$((r + 1))
    done
    for w in direct cold_seq warm_seq; do report "$w/$n" /cache/"$w.$n".*.perf; done
    rm -f /cache/*.perf
done
umount_bounded /mnt/bench
stop_supervisor 30
