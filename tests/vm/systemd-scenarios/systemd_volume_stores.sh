# Issue 7: [[volume]] tables give volumes blob stores of their own. One daemon serves
# four volumes from four places at once:
#   [blobs]            /data/blobs, local: img_multi (fsid=img_multi, device=...), a
#                      volume no [[volume]] names;
#   volume img_b       registry A, nginx on 127.0.0.1:8080: a Bearer token from its
#                      /token, which wants A's credentials (Basic);
#   volume img_big     registry B, nginx on 127.0.0.5:8085: anonymous, and answers 400
#                      to any request with an Authorization header, so A's
#                      credentials and token must never reach it;
#   volume cfsdom      a directory of its own holding img_dom1 and img_dom_data only
#                      (mounted with domain_id=cfsdom).
# - Every image reads right; A handed out a token and served img_b, B served img_big
#   and never saw an Authorization header; neither served anything else.
# - img_dom2 is in /data/blobs but not in cfsdom's directory: its mount fails, so a
#   named volume's blob is never taken from [blobs]; the journal names the volume.
# - The supervisor's journal says where each store's blobs come from; status shows
#   each volume's store (text and JSON); the workers have cfsdom's directory mounted
#   at /volumes/1; the password and the token are in no log, status or /proc file.
# - A [[volume]] whose credentials file is missing stops the start with exit status
#   78 and a journal line naming the volume and the file.
. /usr/lib/cfs-tests/systemd-lib.sh

www=/srv/cfs-www
url_a=http://127.0.0.1:8080/a/
url_b=http://127.0.0.5:8085/b/
secret=vm-volume-s3cret-$$
token=vm-volume-token-$$
basic=$(printf 'puller:%s' "$secret" | base64)
dom_dir=/srv/cfs-vol-dom

step "nginx: registry A (token with credentials) on 127.0.0.1:8080, registry B (anonymous) on 127.0.0.5:8085"
link_blobs "$www" img_b img_big
write_nginx_conf <<NGINX_END
    server {
        listen 127.0.0.1:8080;
        access_log /var/log/nginx/registry-a.log;
        location = /token {
            if (\$http_authorization != "Basic $basic") { return 401; }
            default_type application/json;
            return 200 '{"token": "$token", "expires_in": 300}';
        }
        location /a/ {
            if (\$http_authorization != "Bearer $token") {
                add_header WWW-Authenticate 'Bearer realm="http://127.0.0.1:8080/token",service="cfs-vm",scope="repository:a:pull"' always;
                return 401;
            }
            alias $www/blobs/;
        }
    }
    server {
        listen 127.0.0.5:8085;
        access_log /var/log/nginx/registry-b.log;
        location /b/ {
            if (\$http_authorization != "") { return 400; }
            alias $www/blobs/;
        }
    }
NGINX_END
start_nginx

step "the daemon: [blobs] local, three [[volume]] stores"
mkdir -p "$dom_dir"
cp /data/blobs/img_dom1 /data/blobs/img_dom_data "$dom_dir/"
chmod -R a+rX "$dom_dir"
creds=/etc/cfsupervisor/registry-a-credentials
printf 'puller:%s\n' "$secret" > "$creds"
chmod 600 "$creds"
allow_network
write_config 1
cat >> "$CFS_CONFIG" <<EOF
[[volume]]
name = "img_b"
url = "$url_a"
credentials = "$creds"
[[volume]]
name = "img_big"
url = "$url_b"
[[volume]]
name = "$CFS_DOMAIN"
dir = "$dom_dir"
EOF
systemd_start_supervisor
for line in "\\[\\[volume\\]\\] \"img_b\": blobs of volume erofs,img_b come from $url_a, host pinned for the workers as 127.0.0.1:8080:127.0.0.1, with credentials" \
            "\\[\\[volume\\]\\] \"img_big\": blobs of volume erofs,img_big come from $url_b, host pinned for the workers as 127.0.0.5:8085:127.0.0.5\$" \
            "\\[\\[volume\\]\\] \"$CFS_DOMAIN\": blobs of volume erofs,$CFS_DOMAIN come from $dom_dir\$" \
            "\\[blobs\\]: blobs of volumes no \\[\\[volume\\]\\] names come from /data/blobs\$"; do
    daemon_log | grep -q -- "$line" || unit_fail "the supervisor did not log: $line"
done
for w in $(worker_pids); do
    grep -q " /volumes/1 " "/proc/$w/mountinfo" \
        || fail "worker $w has no /volumes/1 mount: $(cut -d' ' -f5 "/proc/$w/mountinfo" | tr '\n' ' ')"
done

step "each volume reads right from its own store"
mount_checked /mnt/b img_b img_b
mount_checked /mnt/big img_big img_big
mount_erofs /mnt/multi fsid=img_multi,device=img_multi_data
check_manifest /mnt/multi "$CFS_MANIFESTS/img_multi.sha256"
mount_erofs /mnt/dom1 "domain_id=$CFS_DOMAIN,fsid=img_dom1,device=img_dom_data"
check_manifest /mnt/dom1 "$CFS_MANIFESTS/img_dom1.sha256"

step "who served what: A img_b with its token, B img_big without any Authorization"
grep -q '"GET /token?service=cfs-vm&scope=repository%3Aa%3Apull HTTP/1.1" 200' /var/log/nginx/registry-a.log \
    || fail "registry A gave out no token: $(tail -n 3 /var/log/nginx/registry-a.log)"
grep -q '"GET /a/img_b HTTP/1.1" 206' /var/log/nginx/registry-a.log || fail "registry A served no range of img_b"
grep -v -e ' /a/img_b ' -e ' /token?' /var/log/nginx/registry-a.log | grep -q . \
    && fail "registry A was asked for something else: $(grep -v -e ' /a/img_b ' -e ' /token?' /var/log/nginx/registry-a.log | head -n 3)"
grep -q '"GET /b/img_big HTTP/1.1" 206' /var/log/nginx/registry-b.log || fail "registry B served no range of img_big"
grep -q '" 400 ' /var/log/nginx/registry-b.log && fail "registry B was sent an Authorization header"
grep -v ' /b/img_big ' /var/log/nginx/registry-b.log | grep -q . \
    && fail "registry B was asked for something else: $(grep -v ' /b/img_big ' /var/log/nginx/registry-b.log | head -n 3)"

step "img_dom2 is in /data/blobs, not in $CFS_DOMAIN's directory: its mount fails"
mount_refused /mnt/dom2 "domain_id=$CFS_DOMAIN,fsid=img_dom2,device=img_dom_data"
refused_logged() { daemon_log | grep -q "OPEN of object [0-9]* refused: volume \"erofs,$CFS_DOMAIN\" blob \"img_dom2\""; }
wait_for 10 refused_logged || fail "the journal does not name the volume and blob whose OPEN was refused"

step "status shows each volume's store; no password or token anywhere"
cfsupervisor status > /tmp/status.txt || fail "cfsupervisor status failed"
for line in "erofs,img_b: $url_a" "erofs,img_big: $url_b" "erofs,$CFS_DOMAIN: $dom_dir"; do
    grep -q "^ *$line\$" /tmp/status.txt || fail "status does not show '$line': $(cat /tmp/status.txt)"
done
cfsupervisor status --json > /tmp/status.json || fail "cfsupervisor status --json failed"
grep -q "\"volumes\":\\[{\"volume\":\"erofs,img_b\",\"dir\":null,\"url\":\"$url_a\"}," /tmp/status.json \
    || fail "status --json does not list the volumes: $(cat /tmp/status.json)"
daemon_log > /tmp/journal.txt
[ -s /tmp/journal.txt ] || fail "the journal is empty"
grep -q -F -e "$secret" -e "$token" /tmp/journal.txt && fail "the journal holds the password or the token"
grep -q -e "$secret" -e "$token" /tmp/status.txt /tmp/status.json && fail "status shows the password or the token"
for p in $CFS_SUP_PID $(worker_pids); do
    cat "/proc/$p/cmdline" "/proc/$p/environ" | tr '\0' '\n' > /tmp/proc-strings
    [ -s /tmp/proc-strings ] || fail "read nothing from /proc/$p/cmdline and environ"
    grep -q -e "$secret" -e "$token" /tmp/proc-strings \
        && fail "process $p has the password or the token in its command line or environment"
done
require_alive
for m in b big multi dom1; do umount_bounded "/mnt/$m"; done
systemd_stop_supervisor

step "a [[volume]] whose credentials file is missing stops the start, naming the volume"
rm -f "$creds"
st=0
timeout -s KILL "$CFS_READY_TIMEOUT" systemctl start "$CFS_UNIT" || st=$?
[ "$st" -ne 0 ] || fail "the daemon started without volume img_b's credentials file"
exited_78() { [ "$(unit_prop ExecMainStatus)" = 78 ]; }
wait_for 10 exited_78 || fail "the daemon's exit status is $(unit_prop ExecMainStatus), expected 78 (EX_CONFIG)"
daemon_log | grep -q "cannot serve remote blobs: opening volume \"img_b\" credentials $creds: No such file or directory" \
    || unit_fail "the journal does not name the volume and its missing credentials file"
systemctl reset-failed "$CFS_UNIT" 2>/dev/null || true
systemctl stop nginx
