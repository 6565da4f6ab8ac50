# Issue 7, slice 2 (anonymous part): blobs fetched through the OCI distribution API
# from Debian's docker-registry (distribution 2.8) on the guest's loopback, with
# blobs.url = http://127.0.0.1:5000/v2/cfs/images/blobs/ and images mounted by digest
# (-o fsid=sha256:<hex>): the worker asks HEAD and Range GETs of
# /v2/cfs/images/blobs/sha256:<hex>, and checks the digest (img_b, small: at OPEN;
# img_big, 128 MiB: once every byte was fetched). A digest the repository does not
# have is a 404 from the registry: the mount fails at once, and the journal says why.
. /usr/lib/cfs-tests/systemd-lib.sh

store=/var/lib/docker-registry
repo=cfs/images
port=5000
url="http://127.0.0.1:$port/v2/$repo/blobs/"

# add_blob FILE: puts FILE into the registry's filesystem storage as a blob of $repo
# (what a push would leave: the blob data, and the repository's link to it), and
# prints its digest.
add_blob() {
    _hex=$(sha256sum "$1" | cut -d' ' -f1)
    _dir=$store/docker/registry/v2/blobs/sha256/$(echo "$_hex" | cut -c1-2)/$_hex
    mkdir -p "$_dir" "$store/docker/registry/v2/repositories/$repo/_layers/sha256/$_hex"
    ln -s "$1" "$_dir/data"
    printf 'sha256:%s' "$_hex" > "$store/docker/registry/v2/repositories/$repo/_layers/sha256/$_hex/link"
    echo "sha256:$_hex"
}

step "docker-registry serves img_b and img_big under their digests on 127.0.0.1:$port"
digest_b=$(add_blob /data/blobs/img_b)
digest_big=$(add_blob /data/blobs/img_big)
chown -R docker-registry: "$store"
cat > /etc/docker/registry/config.yml <<REGISTRY_END
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $store
http:
  addr: 127.0.0.1:$port
REGISTRY_END
systemctl start docker-registry || { journalctl -b --no-pager -u docker-registry | tail -n 20; fail "docker-registry did not start"; }
registry_listening() { journalctl -b --no-pager -o cat -u docker-registry | grep -q 'listening on 127.0.0.1:5000'; }
wait_for 30 registry_listening || { journalctl -b --no-pager -u docker-registry | tail -n 20; fail "docker-registry is not listening"; }

step "the daemon with an empty blob directory and blobs.url = $url"
mkdir -p /run/systemd/system/cfsupervisor.service.d
printf '[Service]\nPrivateNetwork=no\nRestrictAddressFamilies=AF_INET AF_INET6\nIPAddressAllow=localhost\n' \
    > /run/systemd/system/cfsupervisor.service.d/remote.conf
systemctl daemon-reload
CFS_BLOBS=/var/lib/cfsupervisor/blobs
write_config 1
sed -i "/^dir = \"\/var\/lib\/cfsupervisor\/blobs\"\$/a url = \"$url\"" "$CFS_CONFIG"
grep -q "^url = \"$url\"\$" "$CFS_CONFIG" || fail "url not written into $CFS_CONFIG"
systemd_start_supervisor

step "img_b by digest: checked at OPEN, reads right"
mount_erofs /mnt/b "fsid=$digest_b"
check_manifest /mnt/b "$CFS_MANIFESTS/img_b.sha256"

step "img_big by digest: reads right, checked once every byte was fetched"
t0=$(now_cs)
mount_erofs /mnt/big "fsid=$digest_big"
check_manifest /mnt/big "$CFS_MANIFESTS/img_big.sha256"
big_verified() { daemon_log | grep -q "blob $digest_big verified: every byte fetched matches its digest"; }
wait_for 60 big_verified || unit_fail "img_big was read whole, and its digest was not reported checked"
log "img_big read and verified in $(elapsed "$t0")s"
served_ranges() { journalctl -b --no-pager -o cat -u docker-registry | grep -c "GET /v2/$repo/blobs/$digest_big" || true; }
[ "$(served_ranges)" -gt 1 ] || fail "the registry's log shows no range GETs of img_big"

step "a digest the repository does not have: the mount fails at once"
unknown=sha256:$(printf '%064d' 7)
mkdir -p /mnt/none
st=0
timeout -s KILL 30 mount -t erofs none -o "fsid=$unknown" /mnt/none 2> /tmp/mount.err || st=$?
[ "$st" -ne 0 ] || fail "a digest the registry does not have mounted"
[ "$st" -ne 137 ] || fail "mounting a digest the registry does not have hung"
unknown_logged() { daemon_log | grep -q "blob \"$unknown\": HEAD ${url}$unknown: .*(HTTP 404)"; }
wait_for 10 unknown_logged || unit_fail "no journal line names the registry's 404 for $unknown"
require_alive

step "clean up"
umount_bounded /mnt/big
umount_bounded /mnt/b
systemd_stop_supervisor
systemctl stop docker-registry
