# The demo that scripts/demo.sh runs (and CI runs as vm_demo): mount an erofs image
# lazily through cfsupervisor, read it, SIGKILL a worker in the middle of a 64 MiB
# read, and show that the reader got every byte right while the supervisor replaced
# the worker; then `cfsupervisor status`, and what the daemon logged.
. /cfs/lib.sh

say() { echo "DEMO: $*"; }
# KiB the cache disk gained since the start: what was fetched, which is what
# "lazy" is about. (Not du: cachefiles writes new cache files as unlinked tmpfiles
# and links them into the cache directory only when the object is withdrawn.)
used_kib() { df -k /cache | awk 'NR == 2 { print $3 }'; }
base_kib=$(used_kib)
cache_kib() { echo $(( $(used_kib) - base_kib )); }

step "start cfsupervisor"
CFS_LOG_LEVEL=info
start_supervisor 2
say "supervisor pid $CFS_SUP_PID is bound to /dev/cachefiles; workers: $(worker_pids)"

step "mount img_a lazily"
mount_erofs /mnt/a fsid=img_a
big=$(cat "$CFS_EXPECT/img_a.big_file")
say "mounted img_a (blob $(du -k "$CFS_BLOBS/img_a" | cut -f1) KiB) at /mnt/a; the cache holds $(cache_kib) KiB: only what mount read"
small=$(cd /mnt/a && find . -type f -size -8k -size +1k | head -n 1)
cat "/mnt/a/$small" > /dev/null
say "read one small file ($small); the cache holds $(cache_kib) KiB"

step "read the 64 MiB file and kill a worker in the middle"
want=$(manifest_sha "$CFS_MANIFESTS/img_a.sha256" "$big")
victim=$(serving_worker_pid)
[ -n "$victim" ] || fail "no serving worker in status: $(cfsupervisor status)"
before=$(worker_pids)
n_before=$(worker_count)
fetched_before=$(cache_kib)
(sha256sum "/mnt/a/$big" > /tmp/demo_big.out 2> /tmp/demo_big.err) &
reader=$!
# The kill waits for the read to be under way, not for a set time: under TCG this
# read takes about 1.5 s, and a faster host could finish it before a fixed sleep.
reading() { [ "$(cache_kib)" -ge $((fetched_before + 4096)) ]; }
wait_for 30 reading || fail "the reader fetched less than 4 MiB in 30 s: $(cat /tmp/demo_big.err)"
kill -KILL "$victim"
pid_gone "$reader" && fail "the reader had finished before the kill; the demo proves nothing"
say "SIGKILLed serving worker pid $victim while the reader (pid $reader) streams $big"
replaced() { [ "$(worker_count)" -eq "$n_before" ] && [ "$(worker_pids)" != "$before" ]; }
wait_for 10 replaced || fail "worker $victim was not replaced within 10 s: workers $(worker_pids)"
say "workers now: $(worker_pids) (2 serving, 1 paused spare; the spare took over and a new spare started)"
wait_for 120 pid_gone "$reader" || fail "the reader did not finish within 120 s"
st=0
wait "$reader" || st=$?
[ "$st" -eq 0 ] || fail "the reader failed with status $st: $(cat /tmp/demo_big.err)"
got=$(cut -d' ' -f1 /tmp/demo_big.out)
[ "$got" = "$want" ] || fail "$big: sha256 $got, expected $want"
say "the reader saw no error, and sha256 matches the source: $got"
say "the cache holds $(cache_kib) KiB"

step "cfsupervisor status"
cfsupervisor status > /tmp/demo_status.txt || fail "cfsupervisor status failed: $(cat /tmp/demo_status.txt)"
sed 's/^/DEMO: /' /tmp/demo_status.txt
grep -q 'Failovers: [1-9]' /tmp/demo_status.txt || fail "status does not count the failover"

step "verify every file of the image"
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
require_alive
say "every file of img_a matches its source"
umount_bounded /mnt/a
stop_supervisor 20

echo "DEMO: ----- what cfsupervisor logged -----"
cat "$CFS_LOG"
echo "DEMO: ----- end of log -----"
