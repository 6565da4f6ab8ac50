# The kill storm (../scenarios/kill_storm.inc) with 3 serving worker(s) and a spare,
# the supervisor run by systemd through units/cfsupervisor.service.
. /usr/lib/cfs-tests/systemd-lib.sh
CFS_WORKERS=3
. "$(dirname "$0")/kill_storm.inc"
