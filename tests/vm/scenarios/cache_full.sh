# A cache whose filesystem runs out of room: cachefiles refuses writes below its
# stop limit (3% free), and its daemon must cull what no image uses
# (supervisor/cache_cull.h). img_big is read whole and unmounted, so its cache file
# is no image's; a filler takes the cache disk to 5% free, below the cull limit
# (7%): the supervisor culls img_big's file, oldest first, back to the run limit
# (10%), and img_a, read whole afterwards, reads right. Without culling its reads
# would cross the stop limit after some 20 MiB and fail with EIO.
. /cfs/lib.sh

step "start the supervisor"
CFS_LOG_LEVEL=info
start_supervisor 1
cache_full_steps
stop_supervisor 30
