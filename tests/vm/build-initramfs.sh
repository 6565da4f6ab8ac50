#!/usr/bin/env bash
# Builds the guest initramfs (gzip'd newc cpio) without root:
#   /bin/busybox + every applet as a symlink, /init (guest/init), /cfs/lib.sh,
#   /scenarios/*.sh, /usr/bin/cfsupervisor + /usr/bin/cfsupervisor-worker and the
#   shared libraries and dynamic loader that ldd names for them, /dev/console.
#
# usage: build-initramfs.sh BUILD_DIR OUT
#   BUILD_DIR is the CMake build directory (supervisor/cfsupervisor and
#   worker/cfsupervisor-worker in it); CFS_SUPERVISOR / CFS_WORKER override the
#   paths. With CFS_INITRAMFS_ALLOW_NO_DAEMON=1 missing binaries only warn (for
#   testing the harness before the daemon builds). CFS_INITRAMFS_EXTRA_BINS: more
#   host binaries (absolute paths, space-separated) for /usr/bin, with their
#   libraries (scripts/profile.sh adds perf).
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 BUILD_DIR OUT" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
build=$1
out=$(realpath -m "$2")
sup=${CFS_SUPERVISOR:-$build/supervisor/cfsupervisor}
wrk=${CFS_WORKER:-$build/worker/cfsupervisor-worker}

tool_killer=$build/tests/vm/kill_workers
# The benchmark's reader (bench/); optional, so harness tests need not build it.
tool_bench=$build/bench/cfs-bench-read

bins=() names=()
[[ -x "$tool_bench" ]] && { bins+=("$tool_bench"); names+=(cfs-bench-read); }
for b in "$sup" "$wrk" "$tool_killer"; do
    if [[ -x "$b" ]]; then
        bins+=("$b")
        case "$b" in
            "$sup") names+=(cfsupervisor) ;;
            "$wrk") names+=(cfsupervisor-worker) ;;
            *) names+=("$(basename "$b")") ;;
        esac
    elif [[ "${CFS_INITRAMFS_ALLOW_NO_DAEMON:-0}" == 1 ]]; then
        echo "build-initramfs: WARNING: $b missing, building without it" >&2
    else
        echo "build-initramfs: $b does not exist (build the project first)" >&2
        exit 1
    fi
done

for b in ${CFS_INITRAMFS_EXTRA_BINS:-}; do
    [[ -x "$b" ]] || { echo "build-initramfs: $b (CFS_INITRAMFS_EXTRA_BINS) is not an executable" >&2; exit 1; }
    bins+=("$b"); names+=("$(basename "$b")")
done

bb=$(command -v busybox) || { echo "build-initramfs: busybox not found (busybox-static)" >&2; exit 1; }
if ldd "$bb" >/dev/null 2>&1; then
    echo "build-initramfs: $bb is dynamically linked; install busybox-static" >&2
    exit 1
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/cfs-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cd "$stage"
mkdir -p bin sbin usr/bin usr/sbin lib lib64 etc proc sys dev tmp run cache data mnt \
         cfs scenarios root var/tmp
chmod 1777 tmp var/tmp

cp "$bb" bin/busybox
while IFS= read -r applet; do
    [[ -e "$applet" || -L "$applet" ]] && continue
    mkdir -p "$(dirname "$applet")"
    ln -s /bin/busybox "$applet"
done < <("$bb" --list-full)

# The daemon and everything its ELF files need, at the paths ldd reports.
copy_lib() { # absolute path
    local p=$1
    [[ -e ".$p" ]] && return 0
    mkdir -p ".$(dirname "$p")"
    cp -L "$p" ".$p"
}
for i in "${!bins[@]}"; do
    b=${bins[$i]}
    install -m 0755 "$b" "usr/bin/${names[$i]}"
    while read -r line; do
        case "$line" in
            *"=> not found"*)
                echo "build-initramfs: $b: $line" >&2; exit 1 ;;
            *"=> /"*)
                lib=${line#*=> }; copy_lib "${lib%% (*}" ;;
            /*)
                copy_lib "${line%% (*}" ;;
        esac
    done < <(ldd "$b")
done

install -m 0755 "$here/guest/init" init
install -m 0644 "$here/guest/lib.sh" cfs/lib.sh
# The udev rule the guest's mount_erofs applies by hand (no udev here).
install -m 0644 "$here/../../units/60-cfsupervisor-erofs.rules" cfs/60-cfsupervisor-erofs.rules
# *.inc: scenario bodies that several *.sh scenarios source with other settings.
# bench/guest/*.sh: the benchmark (scripts/bench.sh), run like a scenario.
for s in "$here"/scenarios/*.sh "$here"/scenarios/*.inc "$here"/../../bench/guest/*.sh; do
    [[ -e "$s" ]] || continue
    install -m 0755 "$s" "scenarios/$(basename "$s")"
done

# cfsupervisor-worker: the user workers switch to (workers.user's default; on a real
# system units/cfsupervisor.sysusers creates it).
cat > etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
cfsupervisor-worker:x:999:999:cfsupervisor sandboxed worker:/:/bin/false
EOF
cat > etc/group <<'EOF'
root:x:0:
nogroup:x:65534:
cfsupervisor-worker:x:999:
EOF
echo cfsvm > etc/hostname

# The tree as an unprivileged newc archive owned by root, followed by a second
# archive holding the device nodes that an unprivileged cpio cannot take from the
# file system (the kernel unpacks concatenated archives in order).
tmp_out="$out.tmp"
{
    find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner 0:0 --reproducible --quiet
    python3 - <<'PYEOF'
import sys
def entry(name, mode, rdevmajor=0, rdevminor=0, data=b""):
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join(f"{v:08X}" for v in (
        0, mode, 0, 0, 1, 0, len(data), 0, 0, rdevmajor, rdevminor, len(name_b), 0))
    out = hdr.encode() + name_b
    out += b"\0" * (-len(out) % 4)
    out += data + b"\0" * (-len(data) % 4)
    return out
buf = entry("dev/console", 0o020600, 5, 1) + entry("dev/null", 0o020666, 1, 3)
buf += entry("TRAILER!!!", 0)
sys.stdout.buffer.write(buf)
PYEOF
} | gzip -n -6 > "$tmp_out"
mv "$tmp_out" "$out"
echo "build-initramfs: wrote $out ($(du -h "$out" | cut -f1))" >&2
