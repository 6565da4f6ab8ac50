#!/usr/bin/env bash
# Makes the ext4 root image of the systemd test VM from the cached Debian tree
# (build-rootfs.sh) plus what is under test and what runs the test:
#   everything `cmake --install` installs from BUILD_DIR (DESTDIR install, the layout
#     a Debian package has: /usr/bin/cfsupervisor, the worker in
#     /usr/libexec/cfsupervisor, the units in /lib/systemd/system (not enabled:
#     scenarios start them once the cache disk is mounted), sysusers.d (applied
#     here), tmpfiles.d (applied by the guest's boot), the man pages), so the VM
#     tests run the installed layout rather than the build tree's;
#   /etc/cfsupervisor/cfsupervisor.toml for the guest's disks, in place of the
#     installed example, and a drop-in letting the unit write the cache disk
#     (ReadWritePaths=, as an operator with another cache.dir would);
#   /usr/lib/cfs-tests: lib.sh, systemd-lib.sh, run-scenario and scenarios/*.sh from
#     systemd-scenarios/, and cfs-scenario.service, enabled, which runs them.
# The image is rebuilt only when one of those inputs changed. QEMU must boot it with
# snapshot=on so that it stays as made. mkfs.ext4 -d needs no root itself, but
# reading the Debian tree (0600 files of root) does.
#
# usage: build-root-image.sh BUILD_DIR ROOTFS_TREE OUT
#   CFS_SUPERVISOR / CFS_WORKER: the built binaries (checked to exist; the install
#   takes them from BUILD_DIR).
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 BUILD_DIR ROOTFS_TREE OUT" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
build=$1
tree=$(cd "$2" && pwd)
out=$(realpath -m "$3")
sup=${CFS_SUPERVISOR:-$build/supervisor/cfsupervisor}
wrk=${CFS_WORKER:-$build/worker/cfsupervisor-worker}
for b in "$sup" "$wrk"; do
    [[ -x "$b" ]] || { echo "build-root-image: $b does not exist (build the project first)" >&2; exit 1; }
done

killer=$build/tests/vm/kill_workers
[[ -x "$killer" ]] || { echo "build-root-image: $killer does not exist (build the project first)" >&2; exit 1; }
# The benchmark's reader and its systemd part (scripts/bench.sh); optional.
bench_reader=$build/bench/cfs-bench-read
bench_scenarios=("$here"/../../bench/guest/systemd_*.sh)

# The install, into a directory of its own first: the stage below is hard links into
# the cached tree, and an install writing over an existing file would write into
# the cache. add() copies each file in by unlinking first.
inst="$out.install"
rm -rf "$inst"
trap 'rm -rf "$inst"' EXIT
DESTDIR=$inst cmake --install "$build" > /dev/null
mapfile -t installed < <(cd "$inst" && find . -type f | sed 's|^\.||' | sort)

# Where the installed unit starts the supervisor, and where that supervisor looks
# for its worker: both must be in the install (ctest install_layout checks the same).
unit=$(printf '%s\n' "${installed[@]}" | grep '/systemd/system/cfsupervisor\.service$' || true)
[[ -n "$unit" ]] || { echo "build-root-image: cmake --install installed no cfsupervisor.service" >&2; exit 1; }
sup_path=$(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$inst$unit" | head -n1)
[[ -x "$inst$sup_path" ]] || { echo "build-root-image: the unit's ExecStart $sup_path is not installed" >&2; exit 1; }
mapfile -t wrk_paths < <(grep -ao '/[[:alnum:]/._-]*/cfsupervisor-worker' "$inst$sup_path" | sort -u)
if [[ ${#wrk_paths[@]} -ne 1 || ! -x "$inst${wrk_paths[0]}" ]]; then
    echo "build-root-image: expected one installed worker path in $sup_path, found: ${wrk_paths[*]:-none}" >&2
    exit 1
fi
wrk_path=${wrk_paths[0]}

inputs=("$0" "$here/make-registry-token.sh" "$killer" "$here"/guest/lib.sh "$here"/guest/systemd/*
        "$here"/systemd-scenarios/*.sh "$here"/scenarios/*.inc "${bench_scenarios[@]}")
[[ -x "$bench_reader" ]] && inputs+=("$bench_reader")
key=$( { echo "$tree ${installed[*]}"; cat "${inputs[@]}"; (cd "$inst" && cat "${installed[@]/#/.}"); } \
       | sha256sum | cut -c1-16)
if [[ -f "$out" && "$(cat "$out.key" 2>/dev/null)" == "$key" ]]; then
    echo "build-root-image: $out is up to date ($key)" >&2
    exit 0
fi

# The binaries must find every library in the guest: its libraries are Debian 12's,
# as the host's are (the supported build host), so the host's sonames must exist.
missing=
while read -r soname; do
    found=
    for d in lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib64 lib usr/lib; do
        [[ -e "$tree/$d/$soname" || -L "$tree/$d/$soname" ]] && { found=1; break; }
    done
    [[ -n "$found" ]] || missing="$missing $soname"
done < <(for b in "$inst$sup_path" "$inst$wrk_path"; do ldd "$b"; done \
         | awk '$2 == "=>" && $3 ~ /^\// { print $1 } $1 ~ /^\// && $2 ~ /^\(/ { n = split($1, p, "/"); print p[n] }' \
         | sort -u)
if [[ -n "$missing" ]]; then
    echo "build-root-image: the Debian tree lacks$missing; add the package to build-rootfs.sh" >&2
    exit 1
fi

t0=$SECONDS
stage="$out.stage"
rm -rf "$stage"
# Hard links make the copy nearly free; everything below only ADDS files (never
# writes into an existing one), so the cached tree is not touched through them.
cp -al "$tree" "$stage" 2>/dev/null || { rm -rf "$stage"; cp -a "$tree" "$stage"; }
trap 'rm -rf "$stage" "$inst"' EXIT

add() { # MODE SRC DEST: DEST must be new in the stage
    mkdir -p "$stage$(dirname "$3")"
    rm -f "$stage$3"
    install -m "$1" "$2" "$stage$3"
}
for f in "${installed[@]}"; do
    add "$(stat -c %a "$inst$f")" "$inst$f" "$f"
done
add 0755 "$killer" /usr/bin/kill_workers
[[ -x "$bench_reader" ]] && add 0755 "$bench_reader" /usr/bin/cfs-bench-read
# The workers' user (workers.user's default) from the installed sysusers.d file,
# applied now (systemd-sysusers.service runs at boot only when /etc needs an
# update). The account files are replaced first, not written through: they are hard
# links into the cached tree. The tmpfiles.d file is left to the guest's boot
# (systemd-tmpfiles-setup.service); systemd_smoke checks what it created.
for f in passwd group shadow gshadow; do
    cp -p --remove-destination "$tree/etc/$f" "$stage/etc/$f"
done
systemd-sysusers --root="$stage" "$stage/usr/lib/sysusers.d/cfsupervisor.conf" >&2
# The cache disk is mounted at /cache; the unit may write only its own
# CacheDirectory= otherwise (units/README.md).
mkdir -p "$stage/etc/systemd/system/cfsupervisor.service.d"
printf '# The test VM cache disk (cache.dir = /cache/fscache).\n[Service]\nReadWritePaths=/cache\n' \
    > "$stage/etc/systemd/system/cfsupervisor.service.d/cfs-test.conf"
# The config for the guest's disks (cache on /dev/vdb at /cache, blobs on the
# read-only data disk /dev/vdc at /data): lib.sh's write_config writes it, so that it
# has the same keys as the initramfs scenarios' config (env -i: with its defaults).
env -i PATH="$PATH" CFS_LIB="$here/guest/lib.sh" OUT="$stage.toml" sh -c '. "$CFS_LIB"; CFS_CONFIG=$OUT; write_config 1'
add 0644 "$stage.toml" /etc/cfsupervisor/cfsupervisor.toml
rm -f "$stage.toml"

# A throwaway TLS certificate for localhost, for systemd_remote_blobs' https server
# (nginx) and the CA bundle its workers load; made here because the guest has no
# openssl command.
mkdir -p "$stage/etc/cfs-test-tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$stage/etc/cfs-test-tls/key.pem" -out "$stage/etc/cfs-test-tls/cert.pem" 2> /dev/null
chmod 0644 "$stage/etc/cfs-test-tls/cert.pem"
chmod 0640 "$stage/etc/cfs-test-tls/key.pem"
# docker-registry's token auth: its rootcertbundle and tokens signed for it, for
# systemd_registry_token.
"$here/make-registry-token.sh" "$stage/etc/cfs-test-token"

t=/usr/lib/cfs-tests
add 0644 "$here/guest/lib.sh" "$t/lib.sh"
add 0644 "$here/guest/systemd/systemd-lib.sh" "$t/systemd-lib.sh"
add 0755 "$here/guest/systemd/run-scenario" "$t/run-scenario"
# *.inc: scenario bodies shared with the initramfs VM (scenarios/), sourced by
# systemd scenarios with the daemon started through its unit instead.
for s in "$here"/systemd-scenarios/*.sh "$here"/scenarios/*.inc "${bench_scenarios[@]}"; do
    [[ -e "$s" ]] || continue
    add 0755 "$s" "$t/scenarios/$(basename "$s")"
done
add 0644 "$here/guest/systemd/cfs-scenario.service" /etc/systemd/system/cfs-scenario.service
mkdir -p "$stage/etc/systemd/system/multi-user.target.wants" "$stage/cache" "$stage/data" "$stage/mnt"
ln -sfn /etc/systemd/system/cfs-scenario.service \
    "$stage/etc/systemd/system/multi-user.target.wants/cfs-scenario.service"

# 1 GiB, sparse: the tree is ~160 MiB; the rest is room for what scenarios write.
rm -f "$out.tmp" "$out.key"
truncate -s 1G "$out.tmp"
mkfs.ext4 -q -F -t ext4 -L cfsroot -E root_owner=0:0 -d "$stage" "$out.tmp"
mv "$out.tmp" "$out"
echo "$key" > "$out.key"
echo "build-root-image: wrote $out in $((SECONDS - t0))s (supervisor $sup_path, worker $wrk_path)" >&2
