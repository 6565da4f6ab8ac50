# Several fsids at once, an extra data blob (-o device=), and two images sharing
# one data blob in one domain (-o domain_id=); every manifest and symlink checked.
. /cfs/lib.sh

step "start the supervisor"
start_supervisor 1
step "mount all images"
mount_all_images
step "verify all images"
check_all_images
require_alive
step "umount all images"
umount_all_images
require_alive
