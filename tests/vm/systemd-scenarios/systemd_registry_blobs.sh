# Issue 7, slice 2 (anonymous part): blobs fetched through the OCI distribution API
# from Debian's docker-registry (distribution 2.8) on the guest's loopback, with
# blobs.url = http://127.0.0.1:5000/v2/cfs/images/blobs/ and images mounted by digest
# (-o fsid=sha256:<hex>): the worker asks HEAD and Range GETs of
# /v2/cfs/images/blobs/sha256:<hex>, and checks the digest (img_b, small: at OPEN;
# img_big, 128 MiB: once every byte was fetched). A digest the repository does not
# have is a 404 from the registry: the mount fails at once, and the journal says why.
. /usr/lib/cfs-tests/systemd-lib.sh

url="http://127.0.0.1:$CFS_REGISTRY_PORT/v2/$CFS_REGISTRY_REPO/blobs/"

step "docker-registry serves img_b and img_big under their digests on 127.0.0.1:$CFS_REGISTRY_PORT"
digest_b=$(registry_add_blob /data/blobs/img_b)
digest_big=$(registry_add_blob /data/blobs/img_big)
start_registry < /dev/null

step "the daemon with an empty blob directory and blobs.url = $url"
allow_network
write_remote_config "$url"
systemd_start_supervisor

step "img_b by digest: checked at OPEN, reads right"
mount_checked /mnt/b "$digest_b" img_b

step "img_big by digest: reads right, checked once every byte was fetched"
t0=$(now_cs)
mount_checked /mnt/big "$digest_big" img_big
big_verified() { daemon_log | grep -q "blob $digest_big verified: every byte fetched matches its digest"; }
wait_for 60 big_verified || unit_fail "img_big was read whole, and its digest was not reported checked"
log "img_big read and verified in $(elapsed "$t0")s"
served_ranges() { registry_log | grep -c "GET /v2/$CFS_REGISTRY_REPO/blobs/$digest_big" || true; }
[ "$(served_ranges)" -gt 1 ] || fail "the registry's log shows no range GETs of img_big"

step "a digest the repository does not have: the mount fails at once"
unknown=sha256:$(printf '%064d' 7)
mount_refused /mnt/none "fsid=$unknown"
unknown_logged() { daemon_log | grep -q "blob \"$unknown\": HEAD ${url}$unknown: .*(HTTP 404)"; }
wait_for 10 unknown_logged || unit_fail "no journal line names the registry's 404 for $unknown"
require_alive

step "clean up"
umount_bounded /mnt/big
umount_bounded /mnt/b
systemd_stop_supervisor
systemctl stop docker-registry
