#!/usr/bin/env bash
# Boots the test kernel under QEMU (TCG) with a fresh 1 GiB ext4 cache disk and the
# read-only data disk, runs one scenario in the guest and passes only if the guest
# printed "CFS-RESULT: PASS NAME". The serial console goes to stdout and to
# LOG_DIR/NAME.console.log. Two kinds of guest, sharing everything on this side:
#   default    busybox initramfs; guest/init is PID 1 and runs scenarios/NAME.sh;
#              cache disk /dev/vda, data disk /dev/vdb. Needs no root.
#   --systemd  Debian 12 root image (build-root-image.sh), systemd is PID 1 and
#              cfs-scenario.service runs systemd-scenarios/NAME.sh; root /dev/vda
#              (snapshot=on: the image itself is never written), cache /dev/vdb,
#              data /dev/vdc.
#
# usage: run-scenario.sh [--systemd] NAME TIME_LIMIT_S [VM_DIR]
#   VM_DIR (default: $CFS_VM_DIR, else the current directory) holds what vm_prepare
#   (and vm_rootfs) made: bzImage, initramfs.cpio.gz, rootfs.img, data/data.img;
#   logs go to VM_DIR/logs.
#   CFS_KERNEL, CFS_INITRD, CFS_ROOT_IMG, CFS_DATA_IMG, CFS_LOG_DIR override single paths.
#   CFS_VM_DUMP_LOGS=1 makes the guest print the supervisor log even on success.
#   CFS_VM_APPEND adds to the kernel command line (cfs.env.NAME=V1,V2 sets NAME="V1 V2"
#   in the scenario's environment, in both guests).
set -euo pipefail
mode=initramfs
if [[ "${1:-}" == --systemd ]]; then mode=systemd; shift; fi
[[ $# -ge 2 && $# -le 3 ]] || { echo "usage: $0 [--systemd] NAME TIME_LIMIT_S [VM_DIR]" >&2; exit 2; }
name=$1
limit=$2
vmdir=${3:-${CFS_VM_DIR:-$PWD}}
[[ "$limit" =~ ^[0-9]+$ ]] || { echo "run-scenario: bad time limit '$limit'" >&2; exit 2; }
kernel=${CFS_KERNEL:-$vmdir/bzImage}
data=${CFS_DATA_IMG:-$vmdir/data/data.img}
logdir=${CFS_LOG_DIR:-$vmdir/logs}
root=
append="console=ttyS0 panic=-1 cfs.scenario=$name${CFS_VM_DUMP_LOGS:+ cfs.dumplogs=1}${CFS_VM_APPEND:+ $CFS_VM_APPEND}"
if [[ $mode == initramfs ]]; then
    initrd=${CFS_INITRD:-$vmdir/initramfs.cpio.gz}
    boot=(-initrd "$initrd")
    need=("$kernel" "$initrd" "$data")
else
    root=${CFS_ROOT_IMG:-$vmdir/rootfs.img}
    # The first drive is /dev/vda; the guest finds the cache and data disks after it.
    boot=(-drive "file=$root,format=raw,if=virtio,snapshot=on")
    append="$append root=/dev/vda rw rootfstype=ext4"
    need=("$kernel" "$root" "$data")
fi
for f in "${need[@]}"; do
    [[ -f "$f" ]] || { echo "run-scenario: $f does not exist (run vm_prepare${root:+ and vm_rootfs})" >&2; exit 1; }
done
mkdir -p "$logdir"
log="$logdir/$name.console.log"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cfs-vm-$name.XXXXXX")
qpid= teepid=
cleanup() {
    [[ -n "$qpid" ]] && kill -KILL "$qpid" 2>/dev/null || true
    [[ -n "$teepid" ]] && wait "$teepid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

truncate -s 1G "$tmp/cache.img"
mkfs.ext4 -q -F -L cfscache "$tmp/cache.img"

mkfifo "$tmp/console"
tee "$log" < "$tmp/console" &
teepid=$!

start=$SECONDS
qemu-system-x86_64 -nographic -no-reboot -m 1024 -smp 2 -accel tcg -net none \
    -kernel "$kernel" "${boot[@]}" -append "$append" \
    -drive "file=$tmp/cache.img,format=raw,if=virtio,cache=unsafe" \
    -drive "file=$data,format=raw,if=virtio,readonly=on" \
    < /dev/null > "$tmp/console" 2>&1 &
qpid=$!

timed_out=0
while kill -0 "$qpid" 2>/dev/null; do
    if (( SECONDS - start >= limit )); then
        timed_out=1
        kill -TERM "$qpid" 2>/dev/null || true
        for _ in 1 2 3 4 5; do kill -0 "$qpid" 2>/dev/null || break; sleep 1; done
        kill -KILL "$qpid" 2>/dev/null || true
        break
    fi
    sleep 1
done
qrc=0
wait "$qpid" || qrc=$?
qpid=
wait "$teepid" || true
teepid=
elapsed=$(( SECONDS - start ))

show_tail() {
    echo "----- last 80 lines of the console ($log) -----"
    tail -n 80 "$log" | tr -d '\r'
    echo "-----"
}

if (( timed_out )); then
    show_tail
    echo "scenario $name exceeded its time limit of $limit s"
    exit 1
fi
result=$(tr -d '\r' < "$log" | grep -a '^CFS-RESULT: ' | head -n 1 || true)
if [[ "$result" == "CFS-RESULT: PASS $name" ]]; then
    echo "run-scenario: $name passed in ${elapsed}s (qemu status $qrc)"
    exit 0
fi
show_tail
if [[ -n "$result" ]]; then
    echo "run-scenario: $name failed after ${elapsed}s: ${result#CFS-RESULT: }"
else
    echo "run-scenario: $name: no CFS-RESULT line; QEMU exited with status $qrc after ${elapsed}s"
fi
exit 1
