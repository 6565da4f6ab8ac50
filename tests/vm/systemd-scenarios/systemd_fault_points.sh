# Issue 3, scenario 2: a worker dies at each step of the protocol (test fault
# injection, common/fault_point.h): after reading an OPEN, before and after its
# copen, half-way through a READ's pwrite, after the pwrite but before
# READ_COMPLETE, and on reading a CLOSE. Each time the mount and every read complete
# with correct data and no error, and the journal shows the crash and the failover.
. /usr/lib/cfs-tests/systemd-lib.sh

CFS_FAULT_FILE=/run/cfs-fault
CFS_LOG_LEVEL=info
# No spare: with one, whichever worker says Ready first serves, and the faulted one
# may sit paused. The kill storms cover failovers onto a spare.
CFS_SPARES=0
systemd_start_supervisor 1
crashes() { daemon_log | grep -c 'killed by signal 6' || true; }

for point in open-received open-before-copen open-after-copen read-mid-copy read-before-complete close-received; do
    step "fault point $point"
    # The next worker started (the first of the new instance) gets the fault, once.
    echo "$point 1" > "$CFS_FAULT_FILE"
    systemd_restart_supervisor
    before=$(crashes)
    daemon_log | grep -q "gets fault point $point" || unit_fail "no worker got fault point $point"
    # Data once read stays in the cache (no READ the next time), so each READ fault
    # gets an image not read before.
    case "$point" in
        read-mid-copy) image=img_a opts=fsid=img_a ;;
        read-before-complete) image=img_multi opts=fsid=img_multi,device=img_multi_data ;;
        *) image=img_b opts=fsid=img_b ;;
    esac
    mount_erofs /mnt/b "$opts"
    check_manifest /mnt/b "$CFS_MANIFESTS/$image.sha256"
    umount_bounded /mnt/b
    if [ "$point" = close-received ]; then
        # The CLOSE of that umount killed the worker; the image must mount and read
        # again all the same.
        mount_erofs /mnt/b fsid=img_b
        check_manifest /mnt/b "$CFS_MANIFESTS/img_b.sha256"
        umount_bounded /mnt/b
    fi
    crashed() { [ "$(crashes)" -gt "$before" ]; }
    wait_for 10 crashed || unit_fail "no worker crashed at $point"
    case "$point" in
        # The OPEN it had not answered, or the CLOSE it had read, died with it: that
        # object (and only it) is closed before restore; had it stayed open, the OPEN
        # would fail with EEXIST, or the mount after the umount would wait forever.
        open-before-copen | close-received)
            closed() { daemon_log | grep -q 'closed 1 object(s) whose OPEN or CLOSE worker'; }
            wait_for 10 closed || unit_fail "the failover at $point did not close the object the worker held" ;;
    esac
    require_alive
    echo "CFS-INFO: fault point $point: worker crashed, reads correct; $(daemon_log | grep 'failover: worker' | tail -n 1 | sed 's/.*info: //')"
done
rm -f "$CFS_FAULT_FILE"
systemd_stop_supervisor
