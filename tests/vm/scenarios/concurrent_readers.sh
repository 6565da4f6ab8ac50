# 8 concurrent readers on a cold img_a, each over its own slice of the manifest
# plus the 64 MiB file, each in its own order; all must match.
. /cfs/lib.sh

step "start the supervisor"
start_supervisor 1
step "mount img_a"
mount_erofs /mnt/a fsid=img_a
step "8 concurrent readers"
concurrent_readers /mnt/a "$CFS_MANIFESTS/img_a.sha256" 8 240
require_alive
step "verify img_a once more"
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
require_alive
