# The kill storm (kill_storm.inc) with 1 serving worker(s) and a spare.
. /cfs/lib.sh
CFS_WORKERS=1
. "$(dirname "$0")/kill_storm.inc"
