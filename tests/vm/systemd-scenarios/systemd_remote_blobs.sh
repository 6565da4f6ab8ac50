# Issue 7, slice 1: blobs fetched over HTTP with range requests ([blobs] url). nginx
# serves the data disk's blobs on the guest's loopback; the local blob directory is
# empty, so every blob comes from nginx.
# - img_a mounts and reads right through the remote backend (HEAD for the size, 206
#   range answers in nginx's log); the worker kept the host's network namespace and
#   runs under seccomp; its supervisor resolved "localhost" for it.
# - nginx is stopped while a reader reads img_a cold: the reader waits, nginx comes
#   back after 5 s, and the reader gets every byte right (retries within the budget);
#   the journal says what was retried; status counts the failed fetches.
# - A blob nginx does not have (404) fails the mount at once, and the journal names
#   the URL and the status; a blob that disappears after the mount (404 on READ)
#   fails the reader's read() quickly instead of leaving it waiting.
# - Blobs named by their digest (sha256:<hex>, slice 2) are checked: img_b under its
#   right digest (small: checked whole at OPEN) mounts and reads right; under a wrong
#   one the mount fails and the journal says the blob failed verification; img_big
#   (128 MiB: checked when every byte was fetched) under its right digest reads right
#   and the journal says it was verified.
# - A failover on a remote blob: the worker that takes over serves the blob's READs
#   without asking nginx for its size again (no second HEAD): it has the object's
#   size from the supervisor.
# - A server that wants a Bearer token from a token service that wants credentials
#   (nginx plays both): with blobs.credentials in a root-only file, img_b mounts and
#   reads right, nginx handed out a token, and neither the password nor the token is
#   in the journal, in status, or in any daemon process's command line or environment.
# - https: nginx with a certificate added to the CA bundle workers load before their
#   sandbox; img_b (under a new name, so it is fetched again) reads right over TLS.
. /usr/lib/cfs-tests/systemd-lib.sh

www=/srv/cfs-www
port=8080
url="http://localhost:$port/blobs/"

step "nginx serves the blobs on 127.0.0.1:$port"
mkdir -p "$www/blobs"
for b in /data/blobs/*; do ln -s "$b" "$www/blobs/$(basename "$b")"; done
# A copy nginx can lose while it is mounted (the data disk is read-only).
cp /data/blobs/img_b "$www/blobs/img_gone"
# Blobs under digest names: right ones, and img_b under a wrong one.
digest_b=sha256:$(sha256sum /data/blobs/img_b | cut -d' ' -f1)
digest_big=sha256:$(sha256sum /data/blobs/img_big | cut -d' ' -f1)
wrong_b=sha256:$(printf '%064d' 0)
ln -s /data/blobs/img_b "$www/blobs/$digest_b"
ln -s /data/blobs/img_big "$www/blobs/$digest_big"
ln -s /data/blobs/img_b "$www/blobs/$wrong_b"
serve_directory "$port" "$www"
nginx_up() { systemctl is-active --quiet nginx; }

step "the daemon with an empty blob directory and blobs.url = $url"
allow_network
# For the hostile worker below (test builds: common/fault_point.h).
CFS_FAULT_FILE=/run/cfs-fault
write_remote_config "$url"
[ -z "$(ls -A "$CFS_BLOBS")" ] || fail "$CFS_BLOBS is not empty"
systemd_start_supervisor
daemon_log | grep -q "come from $url, host pinned for the workers as localhost:$port:" \
    || unit_fail "the supervisor did not say how it resolved localhost"
cfsupervisor status > /tmp/status1.txt || fail "cfsupervisor status failed"
grep -q "then $url" /tmp/status1.txt || fail "status does not show blobs.url: $(cat /tmp/status1.txt)"

step "the remote worker's sandbox: the host's network namespace, seccomp on"
for w in $(worker_pids); do
    [ "$(readlink "/proc/$w/ns/net")" = "$(readlink /proc/1/ns/net)" ] \
        || fail "worker $w has a network namespace of its own; a remote worker keeps the host's"
    [ "$(readlink "/proc/$w/ns/mnt")" != "$(readlink /proc/1/ns/mnt)" ] || fail "worker $w has the host's mount namespace"
    grep -q '^Seccomp:[[:space:]]*2$' "/proc/$w/status" || fail "worker $w runs without its seccomp filter"
done

step "the remote worker's Landlock: TCP connections to the blob server's port only"
# A worker started now (the spare replacing the one the failover resumes) runs
# hostile.script from the blob directory once sandboxed: nothing listens on port 5,
# so without Landlock's port rule its connect would say ECONNREFUSED.
printf 'connect %s => ok\nconnect 5 => EACCES\n' "$port" > "$CFS_BLOBS/hostile.script"
chmod a+r "$CFS_BLOBS/hostile.script"
printf 'hostile 1\n' > "$CFS_FAULT_FILE.new" && mv "$CFS_FAULT_FILE.new" "$CFS_FAULT_FILE"
victim=$(serving_worker_pid)
[ -n "$victim" ] || fail "no serving worker: $(cfsupervisor status)"
kill -KILL "$victim"
scripted() { daemon_log | grep -q 'hostile: script done'; }
wait_for 30 scripted || fail "no worker ran hostile.script: $(daemon_log | grep -i hostile | tail -n 3)"
rm -f "$CFS_FAULT_FILE" "$CFS_BLOBS/hostile.script"
daemon_log | grep 'hostile: ' | sed 's/^/CFS-INFO: /'
daemon_log | grep -q "hostile: connect 5 => EACCES, expected EACCES: as expected" \
    || fail "a remote worker connected to a port Landlock should refuse"
daemon_log | grep -q 'hostile: script done, 2 as expected, 0 unexpected' \
    || fail "the remote worker's connections were not as expected: $(daemon_log | grep 'hostile: ' | tail -n 3)"

step "img_a mounted through HTTP; nginx stopped while a reader reads it cold"
mount_erofs /mnt/a fsid=img_a
grep -q '"HEAD /blobs/img_a HTTP/1.1" 200' /var/log/nginx/access.log \
    || fail "nginx saw no HEAD of img_a: $(tail -n 5 /var/log/nginx/access.log)"
systemctl stop nginx
nginx_up && fail "nginx still active after systemctl stop"
t0=$(now_cs)
( check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256" ) > /tmp/reader.log 2>&1 &
reader=$!
sleep 5
kill -0 "$reader" 2>/dev/null || { cat /tmp/reader.log; fail "the reader finished while nginx was down"; }
systemctl start nginx
log "nginx back after $(elapsed "$t0")s"
st=0
wait "$reader" || st=$?
cat /tmp/reader.log
[ "$st" -eq 0 ] || fail "reading img_a across the nginx outage failed (status $st)"
log "img_a read right across the outage in $(elapsed "$t0")s"
grep -q '"GET /blobs/img_a HTTP/1.1" 206' /var/log/nginx/access.log || fail "nginx served no range of img_a"
daemon_log | grep -q "GET ${url}img_a bytes=[0-9]*-[0-9]*: .*retrying in" \
    || unit_fail "the journal does not show a retried range of img_a"
cfsupervisor status > /tmp/status2.txt || fail "cfsupervisor status failed"
cat /tmp/status2.txt
fails=$(sed -n 's/.*; \([0-9]*\) failed fetches$/\1/p' /tmp/status2.txt)
[ -n "$fails" ] && [ "$fails" -gt 0 ] || fail "status counts no failed fetches after the outage"
require_alive

step "a blob nginx does not have: the mount fails at once, the journal names URL and status"
mount_refused /mnt/none fsid=no_such_blob
no_such_logged() { daemon_log | grep -q "blob \"no_such_blob\": HEAD ${url}no_such_blob: .*(HTTP 404)"; }
wait_for 10 no_such_logged || unit_fail "no journal line names the 404 of no_such_blob"

step "a blob that goes away after the mount: the reader gets an error quickly"
mount_erofs /mnt/gone fsid=img_gone
cat /mnt/gone/hello.txt > /dev/null
rm "$www/blobs/img_gone"
read_fails_quickly /mnt/gone/data/blob.bin
gone_logged() { daemon_log | grep -q "READ of object .*img_gone.*GET ${url}img_gone bytes=.*(HTTP 404)"; }
wait_for 10 gone_logged || unit_fail "no journal line names the 404 on READ of img_gone"
require_alive

step "blobs named by their digest are verified"
mount_checked /mnt/db "$digest_b" img_b
mount_refused /mnt/wrong "fsid=$wrong_b"
wrong_logged() { daemon_log | grep -q "blob $wrong_b failed verification: its bytes hash to $digest_b"; }
wait_for 10 wrong_logged || unit_fail "no journal line says $wrong_b failed verification"
t0=$(now_cs)
mount_checked /mnt/dbig "$digest_big" img_big
big_verified() { daemon_log | grep -q "blob $digest_big verified: every byte fetched matches its digest"; }
wait_for 60 big_verified || unit_fail "img_big was read whole, and its digest was not reported checked"
log "img_big read and verified in $(elapsed "$t0")s"
require_alive

step "a failover on a remote blob: the worker that takes over asks nginx for no size"
ln -s /data/blobs/img_big "$www/blobs/img_k"
mount_erofs /mnt/k fsid=img_k
requests_of_k() { grep -c "\"$1 /blobs/img_k HTTP/1.1\"" /var/log/nginx/access.log || true; }
[ "$(requests_of_k HEAD)" -eq 1 ] || fail "nginx saw $(requests_of_k HEAD) HEADs of img_k at its mount, not 1"
wait_for 20 workers_at_strength || fail "no spare stood by before the kill"
victim=$(serving_worker_pid)
[ -n "$victim" ] || fail "no serving worker to kill"
gets_before=$(requests_of_k GET)
kill -KILL "$victim"
wait_for 20 workers_at_strength || fail "the workers were not back to strength 20 s after killing worker $victim"
[ "$(serving_worker_pid)" != "$victim" ] || fail "worker $victim still serves after its SIGKILL"
check_manifest /mnt/k "$CFS_MANIFESTS/img_big.sha256"
[ "$(requests_of_k GET)" -gt "$gets_before" ] || fail "nginx served no range of img_k after the failover"
[ "$(requests_of_k HEAD)" -eq 1 ] \
    || fail "nginx saw $(requests_of_k HEAD) HEADs of img_k: the worker that took over asked for its size again"
require_alive

umount_bounded /mnt/k
umount_bounded /mnt/dbig
umount_bounded /mnt/db
umount_bounded /mnt/gone
umount_bounded /mnt/a
systemd_stop_supervisor

step "a server that wants a Bearer token from a token service that wants credentials (nginx playing both)"
secret=vm-s3cret-$$
token=vm-token-$$
basic=$(printf 'puller:%s' "$secret" | base64)
write_nginx_conf <<NGINX_END
    server {
        listen 127.0.0.1:$port;
        root $www;
        location /private/ {
            if (\$http_authorization != "Bearer $token") {
                add_header WWW-Authenticate 'Bearer realm="http://localhost:$port/token",service="cfs-vm",scope="repository:cfs/images:pull"' always;
                return 401;
            }
            alias $www/blobs/;
        }
        location = /token {
            if (\$http_authorization != "Basic $basic") { return 401; }
            default_type application/json;
            return 200 '{"token": "$token", "expires_in": 300}';
        }
    }
NGINX_END
start_nginx
creds=/etc/cfsupervisor/registry-credentials
printf 'puller:%s\n' "$secret" > "$creds"
chmod 600 "$creds"
write_remote_config "http://localhost:$port/private/" "credentials = \"$creds\""
grep -q "^credentials = \"$creds\"\$" "$CFS_CONFIG" || fail "credentials not written into $CFS_CONFIG"
systemd_start_supervisor
mount_checked /mnt/p img_b img_b
grep -q '"GET /token?service=cfs-vm&scope=repository%3Acfs%2Fimages%3Apull HTTP/1.1" 200' /var/log/nginx/access.log \
    || fail "nginx gave out no token: $(grep token /var/log/nginx/access.log | tail -n 3)"
grep -q '"GET /private/img_b HTTP/1.1" 206' /var/log/nginx/access.log || fail "nginx served no range of /private/img_b"
# Saved first, so that a journal we cannot read fails instead of passing as "no match".
daemon_log > /tmp/journal.txt
[ -s /tmp/journal.txt ] || fail "the journal is empty"
grep -q -F -e "$secret" -e "$token" /tmp/journal.txt && fail "the journal holds the password or the token"
for p in $CFS_SUP_PID $(worker_pids); do
    # Copied first, so that a file we cannot read fails the scenario instead of
    # passing as "no match".
    cat "/proc/$p/cmdline" "/proc/$p/environ" | tr '\0' '\n' > /tmp/proc-strings
    [ -s /tmp/proc-strings ] || fail "read nothing from /proc/$p/cmdline and environ"
    if grep -q -e "$secret" -e "$token" /tmp/proc-strings; then
        fail "process $p has the password or the token in its command line or environment"
    fi
done
cfsupervisor status --json > /tmp/status.json || fail "cfsupervisor status --json failed"
[ -s /tmp/status.json ] || fail "cfsupervisor status --json printed nothing"
grep -q -F -e "$secret" -e "$token" /tmp/status.json && fail "status shows the password or the token"
require_alive

umount_bounded /mnt/p
systemd_stop_supervisor

step "https: nginx with a certificate the workers' CA bundle has"
ln -s /data/blobs/img_b "$www/blobs/img_tls"
tls_port=8443
write_nginx_conf <<NGINX_END
    server {
        listen 127.0.0.1:$tls_port ssl;
        ssl_certificate /etc/cfs-test-tls/cert.pem;
        ssl_certificate_key /etc/cfs-test-tls/key.pem;
        root $www;
    }
NGINX_END
start_nginx
# The bundle workers read before their sandbox (worker/http_backend.h).
mkdir -p /etc/ssl/certs
cat /etc/cfs-test-tls/cert.pem >> /etc/ssl/certs/ca-certificates.crt
write_remote_config "https://localhost:$tls_port/blobs/"
systemd_start_supervisor
mount_checked /mnt/tls img_tls img_b
grep -q '"GET /blobs/img_tls HTTP/1.1" 206' /var/log/nginx/access.log || fail "nginx served no range of img_tls over TLS"
require_workers_in_unit
require_alive

step "clean up"
umount_bounded /mnt/tls
systemd_stop_supervisor
systemctl stop nginx
