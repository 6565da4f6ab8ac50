# After umount, the daemon closes what it opened for the mounts: every worker's
# (and the supervisor's) open-fd count returns to its value before the mount.
# Two workers, so that copies of the kernel's anon fds spread over several processes.
. /cfs/lib.sh

step "start the supervisor with 2 workers"
start_supervisor 2
procs="$CFS_SUP_PID $(worker_pids)"
counts() { for p in $procs; do printf '%s:%s ' "$p" "$(fd_count "$p")"; done; }
total() { _s=0; for p in $procs; do _s=$((_s + $(fd_count "$p"))); done; echo "$_s"; }
sleep 1
before=$(counts) before_total=$(total)
log "fd counts before mounting (pid:count): $before"
step "mount, read everything"
mount_erofs /mnt/b fsid=img_b
mount_erofs /mnt/multi fsid=img_multi,device=img_multi_data
mount_erofs /mnt/dom1 "domain_id=$CFS_DOMAIN,fsid=img_dom1,device=img_dom_data"
check_manifest /mnt/b "$CFS_MANIFESTS/img_b.sha256"
check_manifest /mnt/multi "$CFS_MANIFESTS/img_multi.sha256"
check_manifest /mnt/dom1 "$CFS_MANIFESTS/img_dom1.sha256"
during=$(counts) during_total=$(total)
log "fd counts while mounted: $during"
# 5 cache objects are open now (img_b, img_multi, img_multi_data, img_dom1,
# img_dom_data); the anon fds the kernel handed out must be held somewhere.
[ "$during_total" -gt "$before_total" ] \
    || fail "no extra fds held while mounted: before $before, during $during"
step "umount; fd counts return to baseline"
umount_bounded /mnt/b
umount_bounded /mnt/multi
umount_bounded /mnt/dom1
back() { [ "$(counts)" = "$before" ]; }
wait_for 30 back || fail "fd counts did not return to baseline within 30s: before $before, while mounted $during, now $(counts)"
log "fd counts after umount: $(counts)"
require_alive
