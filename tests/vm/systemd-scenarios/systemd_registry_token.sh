# Issue 7: Debian's docker-registry (distribution 2.8) with its JWT token auth
# (auth: token: realm/service/issuer/rootcertbundle), the token service on ANOTHER
# address and port (nginx on 127.0.0.2:5001, handing out a token signed at image
# build time, tests/vm/make-registry-token.sh, to Basic credentials only), reached
# through blobs.allowed_origins.
# - img_b by digest mounts and reads right: the worker got a token from the realm
#   with the credentials of a root-only file, and the registry took it.
# - Tokens live 6 s (expires_in): after a pause longer than that, img_big (128 MiB)
#   reads right and verified while the worker renews its token ahead of expiry:
#   several token requests, and no 401 from the registry beyond the first challenge.
# - A token the registry refuses (signed by a key it does not trust), handed out
#   after img_a was mounted: reading img_a's 64 MiB file fails with EIO within
#   seconds, the journal says the registry refused the token (naming the URL, the
#   realm, HTTP 401), and status counts the failed fetch.
# - Credentials the token service refuses: the mount fails at once, the journal
#   names the token service's URL and its 401, status counts it.
# - Without allowed_origins the realm is refused by name before any request to it.
# - Neither password nor token is in the journal or in status.
. /usr/lib/cfs-tests/systemd-lib.sh

url="http://127.0.0.1:$CFS_REGISTRY_PORT/v2/$CFS_REGISTRY_REPO/blobs/"
realm_origin=http://127.0.0.2:5001
tokens=/srv/cfs-token
secret=vm-token-pw-$$
basic=$(printf 'puller:%s' "$secret" | base64)
token_log=/var/log/nginx/token.log

step "the token service on $realm_origin: nginx, Basic credentials in, a signed token out"
mkdir -p "$tokens"
cp /etc/cfs-test-token/token.json "$tokens/current.json"
chmod -R a+rX "$tokens"
write_nginx_conf <<NGINX_END
    server {
        listen 127.0.0.2:5001;
        access_log $token_log;
        location = /token {
            if (\$http_authorization != "Basic $basic") { return 401; }
            default_type application/json;
            alias $tokens/current.json;
        }
    }
NGINX_END
start_nginx
token_requests() { grep -c '"GET /token?service=cfs-registry&scope=repository%3Acfs%2Fimages%3Apull HTTP/1.1" 200' "$token_log" || true; }

step "docker-registry with token auth: realm $realm_origin/token, service cfs-registry, issuer cfs-test-issuer"
digest_a=$(registry_add_blob /data/blobs/img_a)
digest_b=$(registry_add_blob /data/blobs/img_b)
digest_big=$(registry_add_blob /data/blobs/img_big)
start_registry <<REGISTRY_END
auth:
  token:
    realm: $realm_origin/token
    service: cfs-registry
    issuer: cfs-test-issuer
    rootcertbundle: /etc/cfs-test-token/root.pem
REGISTRY_END
registry_401s() { registry_log | grep -c '" 401 ' || true; }

step "the daemon: blobs.url $url, credentials, allowed_origins [$realm_origin]"
allow_network
creds=/etc/cfsupervisor/registry-credentials
printf 'puller:%s\n' "$secret" > "$creds"
chmod 600 "$creds"
write_remote_config "$url" "credentials = \"$creds\"" "allowed_origins = [\"$realm_origin\"]"
systemd_start_supervisor
daemon_log | grep -q "workers may also contact $realm_origin (blobs.allowed_origins" \
    || unit_fail "the supervisor did not say which other origin workers may contact"
daemon_log | grep -q "host pinned for the workers as 127.0.0.1:$CFS_REGISTRY_PORT:127.0.0.1 127.0.0.2:5001:127.0.0.2" \
    || unit_fail "the supervisor did not pin both hosts"

step "img_b by digest: a token from the realm on another address, taken by the registry"
mount_checked /mnt/b "$digest_b" img_b
[ "$(token_requests)" -ge 1 ] || fail "the token service handed out no token: $(tail -n 3 "$token_log")"
registry_log | grep -q "\"GET /v2/$CFS_REGISTRY_REPO/blobs/$digest_b HTTP/1.1\" 20[06]" \
    || fail "the registry served no GET of img_b with the token"
[ "$(registry_401s)" -eq 1 ] || fail "expected one 401 (the first challenge) from the registry, got $(registry_401s)"

step "tokens live 6 s: after 8 s idle, img_big reads right while the token is renewed ahead of expiry"
sleep 8
before=$(token_requests)
t0=$(now_cs)
mount_checked /mnt/big "$digest_big" img_big
big_verified() { daemon_log | grep -q "blob $digest_big verified: every byte fetched matches its digest"; }
wait_for 60 big_verified || unit_fail "img_big was read whole, and its digest was not reported checked"
after=$(token_requests)
log "img_big read and verified in $(elapsed "$t0")s; token requests $before -> $after; registry 401s: $(registry_401s)"
[ "$after" -gt "$before" ] || fail "no token was renewed while img_big was read after the token expired"
[ "$(registry_401s)" -eq 1 ] || fail "the registry answered 401 again ($(registry_401s) in all): the token was not renewed ahead of expiry"
[ "$(failed_fetches)" = 0 ] || fail "status counts $(failed_fetches) failed fetches with a good token"
require_alive

step "a token the registry refuses: reading img_a's big file fails with EIO quickly, journal and status say why"
mount_erofs /mnt/a "fsid=$digest_a"
[ "$(sha256sum < /mnt/a/f4096 | cut -d' ' -f1)" = "$(manifest_sha "$CFS_MANIFESTS/img_a.sha256" f4096)" ] \
    || fail "img_a's f4096 read wrong with a good token"
cp /etc/cfs-test-token/forged.json "$tokens/current.json"
sleep 7  # the good token is past its renewal time: the next request fetches the forged one
read_fails_quickly "/mnt/a/$(cat "$CFS_EXPECT/img_a.big_file")"
refused_logged() {
    daemon_log | grep -q "GET ${url}$digest_a bytes=[0-9]*-[0-9]*: the server refused the token from $realm_origin/token?service=cfs-registry&scope=repository%3Acfs%2Fimages%3Apull (HTTP 401)"
}
wait_for 10 refused_logged || unit_fail "no journal line says the registry refused the token, with URL and status"
fails=$(failed_fetches)
[ -n "$fails" ] && [ "$fails" -gt 0 ] || fail "status counts no failed fetch after the refused token"
log "status: $fails failed fetches"
require_alive
umount_bounded /mnt/a
umount_bounded /mnt/big
umount_bounded /mnt/b
systemd_stop_supervisor

step "credentials the token service refuses: the mount fails at once, naming the token service and its 401"
cp /etc/cfs-test-token/token.json "$tokens/current.json"
printf 'puller:not-%s\n' "$secret" > "$creds"
systemd_start_supervisor
mount_refused /mnt/wrong "fsid=$digest_b"
wrong_logged() {
    daemon_log | grep -q "HEAD ${url}$digest_b: the server asks for authentication, and its token service GET $realm_origin/token?service=cfs-registry&scope=repository%3Acfs%2Fimages%3Apull answered HTTP 401 (HTTP 401)"
}
wait_for 10 wrong_logged || unit_fail "no journal line names the token service's 401"
fails=$(failed_fetches)
[ -n "$fails" ] && [ "$fails" -gt 0 ] || fail "status counts no failed fetch after the refused credentials"
systemd_stop_supervisor

step "without allowed_origins the realm on another origin is refused by name, and never asked"
printf 'puller:%s\n' "$secret" > "$creds"
write_remote_config "$url" "credentials = \"$creds\""
before=$(wc -l < "$token_log")
systemd_start_supervisor
mount_refused /mnt/wrong "fsid=$digest_b"
realm_refused() {
    daemon_log | grep -q "its token service $realm_origin/token is on $realm_origin, which is neither blobs.url's origin http://127.0.0.1:$CFS_REGISTRY_PORT nor in blobs.allowed_origins"
}
wait_for 10 realm_refused || unit_fail "no journal line says the realm is not an allowed origin"
[ "$(wc -l < "$token_log")" -eq "$before" ] || fail "the token service was asked although it is not allowed"
systemd_stop_supervisor

step "neither the password nor a token is in the journal"
jwt=$(sed -n 's/.*"token": "\([^"]*\)".*/\1/p' /etc/cfs-test-token/token.json)
[ -n "$jwt" ] || fail "no token in /etc/cfs-test-token/token.json"
daemon_log > /tmp/journal.txt
[ -s /tmp/journal.txt ] || fail "the journal is empty"
grep -q -F -e "$secret" -e "$jwt" /tmp/journal.txt && fail "the journal holds the password or the token"

step "clean up"
systemctl stop docker-registry nginx
