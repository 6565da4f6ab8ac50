# Issue 7: a blob server that redirects blob requests to a blob store on another
# address and port, as S3-backed registries do (307 to a presigned URL). nginx plays
# all of it:
#   127.0.0.1:8080  the "registry": wants a Bearer token (its own /token) and answers
#                   every authorised blob request with 307 to the store, with a query
#                   standing for a presigned URL's signature;
#   127.0.0.3:8081  the store, in blobs.allowed_origins: serves the blobs, and
#                   answers 400 to any request carrying an Authorization header (the
#                   registry's token must never reach it);
#   127.0.0.4:8082  a store NOT in allowed_origins, where /redirect/img_evil points.
# - img_b and img_big (128 MiB) mount and read right through the redirect; the
#   store served the ranges (206) and never saw an Authorization header; the
#   registry redirected img_big's GETs a few times only, not once per range (the
#   target is kept per blob); the journal never shows the signature.
# - A redirect to the origin not allowed fails the mount at once, the journal names
#   it, and nothing reached that origin.
. /usr/lib/cfs-tests/systemd-lib.sh

www=/srv/cfs-www
url=http://127.0.0.1:8080/redirect/
store=http://127.0.0.3:8081
token=vm-redirect-token-$$
signature=vm-signature-$$

step "nginx: a registry on 127.0.0.1:8080 redirecting to a store on 127.0.0.3:8081"
link_blobs "$www" img_b img_big
write_nginx_conf <<NGINX_END
    server {
        listen 127.0.0.1:8080;
        access_log /var/log/nginx/registry.log;
        location = /token {
            default_type application/json;
            return 200 '{"token": "$token", "expires_in": 300}';
        }
        location = /redirect/img_evil {
            return 307 http://127.0.0.4:8082/store/img_b;
        }
        location ~ ^/redirect/(.+)\$ {
            if (\$http_authorization != "Bearer $token") {
                add_header WWW-Authenticate 'Bearer realm="http://127.0.0.1:8080/token",service="cfs-vm",scope="repository:cfs/images:pull"' always;
                return 401;
            }
            return 307 $store/store/\$1?X-Signature=$signature;
        }
    }
    server {
        listen 127.0.0.3:8081;
        access_log /var/log/nginx/store.log;
        location /store/ {
            if (\$http_authorization != "") { return 400; }
            alias $www/blobs/;
        }
    }
    server {
        listen 127.0.0.4:8082;
        access_log /var/log/nginx/elsewhere.log;
        location /store/ { alias $www/blobs/; }
    }
NGINX_END
start_nginx

step "the daemon: blobs.url $url, allowed_origins [$store]"
allow_network
write_remote_config "$url" "allowed_origins = [\"$store\"]"
systemd_start_supervisor

step "img_b and img_big read right through the redirect, with no Authorization at the store"
mount_checked /mnt/b img_b img_b
t0=$(now_cs)
mount_checked /mnt/big img_big img_big
log "img_big read through the redirect in $(elapsed "$t0")s"
redirects_big=$(grep -c '"GET /redirect/img_big HTTP/1.1" 307' /var/log/nginx/registry.log || true)
ranges_big=$(grep -c '"GET /store/img_big?X-Signature=[^ ]* HTTP/1.1" 206' /var/log/nginx/store.log || true)
log "registry: $redirects_big redirects of img_big's GETs; store: $ranges_big ranges of img_big"
[ "$ranges_big" -gt 8 ] || fail "the store served only $ranges_big ranges of img_big"
[ "$redirects_big" -ge 1 ] || fail "the registry redirected no GET of img_big"
# Kept for 5 min per blob: at most one redirect per minute the read took, plus one.
[ "$redirects_big" -le $(( $(elapsed "$t0" | cut -d. -f1) / 60 + 2 )) ] \
    || fail "the registry redirected $redirects_big of img_big's GETs: the target was not kept"
grep -q '"HEAD /store/img_b?X-Signature=' /var/log/nginx/store.log || fail "the HEAD of img_b was not redirected to the store"
grep -q '" 400 ' /var/log/nginx/store.log && fail "the store got a request with an Authorization header: $(grep '" 400 ' /var/log/nginx/store.log | head -n 2)"
daemon_log > /tmp/journal.txt
[ -s /tmp/journal.txt ] || fail "the journal is empty"
grep -q -F -e "$signature" -e "$token" /tmp/journal.txt && fail "the journal holds the redirect's signature or the token"
require_alive

step "a redirect to an origin not in allowed_origins: the mount fails at once, naming it"
mount_refused /mnt/evil fsid=img_evil
evil_logged() {
    daemon_log | grep -q "HEAD ${url}img_evil: its redirect to http://127.0.0.4:8082/store/img_b is on http://127.0.0.4:8082, which is neither blobs.url's origin http://127.0.0.1:8080 nor in blobs.allowed_origins (HTTP 307)"
}
wait_for 10 evil_logged || unit_fail "no journal line names the redirect that is not allowed"
[ ! -s /var/log/nginx/elsewhere.log ] || fail "the origin not allowed was contacted: $(cat /var/log/nginx/elsewhere.log)"
require_alive

step "clean up"
umount_bounded /mnt/big
umount_bounded /mnt/b
systemd_stop_supervisor
systemctl stop nginx
