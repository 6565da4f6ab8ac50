# The kill storm (kill_storm.inc) with 3 serving worker(s) and a spare.
. /cfs/lib.sh
CFS_WORKERS=3
. "$(dirname "$0")/kill_storm.inc"
