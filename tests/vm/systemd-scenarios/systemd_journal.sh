# Issue 5 (part 3): under systemd the supervisor writes native journal entries with
# fields. A mount's OPEN is logged with OBJECT_ID, VOLUME, COOKIE_KEY and the
# WORKER_PID that read it; that worker is killed, and its death is an entry with its
# WORKER_PID and the "worker died" MESSAGE_ID, then the failover's end is one with
# the "failover done" MESSAGE_ID (supervisor/message_ids.h), and the image still
# reads right. Workers keep logging to stderr (their sandbox cannot reach the
# journal's socket), which the journal holds as the unit's stdout lines.
. /usr/lib/cfs-tests/systemd-lib.sh

WORKER_DIED=9c030c31deb54f55ad5cbf82632aeb9b
FAILOVER_DONE=69bc66d3d2064fb5a79239c26c0982a3

# unit_journal MATCH...: the unit's entries since boot matching every FIELD=value,
# in journalctl's export format (FIELD=value lines, a blank line between entries).
unit_journal() { journalctl -b --no-pager -o export -u "$CFS_UNIT" "$@"; }
# first_field FIELD MATCH...: FIELD of the first entry matching.
first_field() { _f=$1; shift; unit_journal "$@" | sed -n "s/^$_f=//p" | head -n 1; }

step "start the unit with one worker and one spare"
CFS_SPARES=1 systemd_start_supervisor 1

step "mount img_a: the OPEN is an entry with OBJECT_ID, VOLUME, COOKIE_KEY, WORKER_PID"
mount_erofs /mnt/a fsid=img_a
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
opener=$(first_field WORKER_PID COOKIE_KEY=img_a _TRANSPORT=journal)
object=$(first_field OBJECT_ID COOKIE_KEY=img_a _TRANSPORT=journal)
volume=$(first_field VOLUME COOKIE_KEY=img_a _TRANSPORT=journal)
[ -n "$opener" ] && [ -n "$object" ] && [ -n "$volume" ] \
    || unit_fail "no journal entry with COOKIE_KEY=img_a carrying WORKER_PID, OBJECT_ID and VOLUME (got '$opener' '$object' '$volume')"
log "object $object (volume $volume, blob img_a) opened by worker pid $opener"
kill -0 "$opener" 2>/dev/null || fail "worker $opener, which opened img_a, is not running"
case " $(worker_pids) " in *" $opener "*) ;; *) fail "pid $opener is not a cfsupervisor-worker" ;; esac

step "kill worker $opener: its death carries WORKER_PID and the worker-died MESSAGE_ID"
kill -KILL "$opener"
died() { [ -n "$(unit_journal WORKER_PID="$opener" MESSAGE_ID=$WORKER_DIED)" ]; }
wait_for 30 died || unit_fail "no journal entry WORKER_PID=$opener MESSAGE_ID=$WORKER_DIED after the kill"
log "journal: $(journalctl -b --no-pager -o cat -u "$CFS_UNIT" WORKER_PID="$opener" MESSAGE_ID=$WORKER_DIED)"
[ "$(first_field PRIORITY WORKER_PID="$opener" MESSAGE_ID=$WORKER_DIED)" = 4 ] \
    || unit_fail "the worker-died entry is not PRIORITY=4 (warning)"

step "the failover ends with the failover-done MESSAGE_ID, and img_a reads right"
done_entry() { [ -n "$(unit_journal MESSAGE_ID=$FAILOVER_DONE)" ]; }
wait_for 30 done_entry || unit_fail "no journal entry MESSAGE_ID=$FAILOVER_DONE after worker $opener died"
sync
echo 3 > /proc/sys/vm/drop_caches
check_manifest /mnt/a "$CFS_MANIFESTS/img_a.sha256"
require_alive

step "workers still log to stderr, kept as the unit's stdout lines"
[ -n "$(unit_journal _TRANSPORT=stdout)" ] || unit_fail "no stderr lines from the workers in the unit's journal"
[ -z "$(unit_journal _TRANSPORT=stdout _PID="$CFS_SUP_PID")" ] \
    || unit_fail "the supervisor (pid $CFS_SUP_PID) still writes lines to stderr under systemd"

step "umount, stop"
umount_bounded /mnt/a
systemd_stop_supervisor
