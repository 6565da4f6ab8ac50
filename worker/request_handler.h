// Answers the kernel's requests: OPEN (find the blob, copen), READ (copy the range
// into the cache file, READ_COMPLETE), CLOSE (drop the object). Everything that goes
// wrong with one request is answered and logged here, naming the object, volume and
// blob; only a broken supervisor link is returned, because the worker cannot go on.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

#include "common/kernel_msg.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "worker/aligned_bytes.h"
#include "worker/blob_backend.h"
#include "worker/volume_router.h"
#include "worker/kernel_io.h"
#include "worker/read_ahead.h"
#include "worker/supervisor_link.h"

namespace cfs::worker {

inline constexpr std::size_t kCacheBlockSize = 4096;  // cache files take direct I/O
// The most one read of a blob and one write into a cache file carry. Each is a round
// trip to the disk that costs about as much as its bytes: in the test VM a direct-I/O
// copy in 4 MiB pieces ran 1.7 to 2.4 times as fast as in 1 MiB pieces (bench/).
// The worker's buffer is this large, and a READ waits at most one such write.
inline constexpr std::size_t kCopyChunkSize = 4 << 20;
static_assert(kCopyChunkSize % kHugePageSize == 0);

// The buffer every blob read and cache write goes through: direct I/O wants it
// block-aligned, and huge pages make its pinning cheap (allocate_huge). Touched at
// once, so that no READ pays for its page faults: a spare's first READ after a
// failover would otherwise zero 4 MiB (and, where huge pages are scarce, compact
// memory for them). Null when there is no memory for it.
[[nodiscard]] inline AlignedBytes allocate_copy_buffer() {
    AlignedBytes bytes = allocate_huge(kCopyChunkSize);
    if (bytes) std::memset(bytes.get(), 0, kCopyChunkSize);
    return bytes;
}

// A cache-file write for a READ that the kernel refuses for want of room (ENOBUFS:
// the cache's filesystem is below its refusal limit) is tried again every
// kCacheRoomRetry, for up to kCacheRoomWait in all per READ. The supervisor looks at
// the room every second and culls what no image uses (supervisor/cache_cull.h): a
// cache filled faster than that costs the reader a wait, not an EIO. The bound keeps
// a READ well within the supervisor's 5 s for a Pause, which a worker reads only
// between requests. A READ that waited in vain makes the READs of the next
// kCacheFullHold fail at once (each tries once): a cache full of what mounted images
// use then costs each reader an EIO, not a wait each. Read-ahead never waits.
inline constexpr auto kCacheRoomWait = std::chrono::milliseconds(2000);
inline constexpr auto kCacheRoomRetry = std::chrono::milliseconds(100);
inline constexpr auto kCacheFullHold = std::chrono::seconds(5);

struct RequestCounters {
    std::uint64_t opens = 0;
    std::uint64_t opens_refused = 0;
    std::uint64_t reads = 0;
    std::uint64_t reads_short = 0;  // answered without all the data (blob short or failing)
    std::uint64_t bytes_written = 0;
    std::uint64_t bytes_ahead = 0;          // of bytes_written, written ahead of any READ
    std::uint64_t reads_already_written = 0;  // READs whose range the cache file held already
    // Read-ahead pieces another worker wrote while this one read their blob bytes,
    // left unwritten.
    std::uint64_t ahead_pieces_written_meanwhile = 0;
    std::uint64_t closes = 0;
    std::uint64_t malformed = 0;
    // Copies handed over ahead of need (ObjectShare): kept, then used by a READ
    // (no ObjectQuery needed), or closed at once (a copy of an object held already,
    // or kMaxSharedObjects unused ones kept already).
    std::uint64_t shares_kept = 0;
    std::uint64_t shares_used = 0;
    std::uint64_t shares_closed = 0;
    std::uint64_t shares_opened_ahead = 0;  // of shares_kept, their blob opened on arrival
    std::uint64_t queries = 0;  // ObjectQuery sent: a READ for an object this worker lacked
    std::uint64_t objects_let_go = 0;  // copies closed to stay within kMaxServedObjects
    std::uint64_t room_waits = 0;      // READs' cache writes that waited for room (kCacheRoomWait)
};

class RequestHandler {
public:
    // `read_ahead_max`: the largest read-ahead window in bytes (worker/read_ahead.h);
    // 0 copies only the ranges the kernel asks for.
    // `blobs`: which store serves each volume (worker/volume_router.h).
    // `copy_buffer`: kCopyChunkSize bytes (allocate_copy_buffer()), made before the
    // worker's sandbox; the default is for tests, which have none.
    RequestHandler(KernelIo& kernel, VolumeRouter blobs, SupervisorLink& supervisor, std::uint64_t read_ahead_max = 0,
                   AlignedBytes copy_buffer = allocate_copy_buffer());
    // Every volume from `backend`.
    RequestHandler(KernelIo& kernel, BlobBackend& backend, SupervisorLink& supervisor,
                   std::uint64_t read_ahead_max = 0)
        : RequestHandler(kernel, VolumeRouter(backend), supervisor, read_ahead_max) {}

    // One message as read from the device.
    [[nodiscard]] Status handle(std::span<const std::byte> message);
    // Read-ahead is written after the READ that asked for it was completed, a chunk at
    // a time while no request waits, so no reader waits for another's read-ahead.
    [[nodiscard]] bool has_ahead_work() const { return !streams_.empty(); }
    // Writes the next chunk of one planned read-ahead (round robin over objects).
    void write_ahead_step();
    // The supervisor says the object is gone: close our copy of its anon fd.
    void forget(std::uint32_t object_id);
    // The supervisor handed us a copy ahead of need (ObjectShare, sent to spares).
    // Kept until a READ wants it. While paused, its blob is opened now where that
    // asks no server and holds no memory (BlobBackend::open_ahead: a local blob);
    // otherwise when the READ comes (a remote blob's open is a request to the
    // server; a worker already serving would delay the READs it has in hand).
    // Closed at once if we hold the object already (never two copies) or keep
    // wire::kMaxSharedObjects unused ones. The first one a spare opens the blob of is
    // rehearsed on (rehearse_read).
    void take_shared(SharedObject object);
    // Paused (the worker's start, and between Pause and Resume) or serving.
    void set_paused(bool paused) { paused_ = paused; }

    [[nodiscard]] std::size_t object_count() const { return objects_.size(); }
    // At most this many objects are kept (two fds each, within the worker's
    // RLIMIT_NOFILE, common/worker_sandbox.h); beyond it the least recently read one's
    // copy is closed. The supervisor keeps one, and a READ asks for it again.
    static constexpr std::size_t kMaxServedObjects = 2000;
    void set_max_objects(std::size_t n) { max_objects_ = n; }
    [[nodiscard]] std::size_t shared_count() const { return shared_.size(); }
    [[nodiscard]] const RequestCounters& counters() const { return counters_; }

private:
    struct Object {
        unique_fd anon_fd;
        std::unique_ptr<BlobSource> blob;  // null while the blob cannot be opened here
        std::string volume_key;
        std::string cookie_key;
        std::uint64_t size = 0;  // as copened: a remote store is not asked for it again
        std::uint64_t last_used = 0;  // use_clock_ at its last READ
    };
    // Read-ahead planned for one object and not yet written.
    struct AheadStream {
        std::uint32_t object_id;
        ByteRange left;
        kmsg::ReadRequest request;  // the READ that planned it, named in logs
    };
    // Objects with read-ahead in progress at once; a new one replaces the oldest.
    static constexpr std::size_t kMaxStreams = 8;

    [[nodiscard]] Status handle_open(kmsg::OpenRequest& request);
    [[nodiscard]] Status handle_read(const kmsg::ReadRequest& request);
    [[nodiscard]] Status handle_close(const kmsg::CloseRequest& request);
    [[nodiscard]] Status handle_malformed(std::span<const std::byte> message, const Error& why);
    // Finds the object: one this worker serves, else a copy handed over ahead of
    // need, else asks the supervisor (ObjectQuery).
    [[nodiscard]] Result<Object*> find_object(std::uint32_t object_id);
    // Opens the blob of an object this worker did not open itself; on failure logs
    // why and leaves `object.blob` null, for the next READ to try again.
    void open_blob(std::uint32_t object_id, Object& object);
    // Copies `range` (whole blocks) from the blob into the cache file; false if not all
    // of it could be. `request` names the READ it is for, in logs; `ahead`: the range
    // is read-ahead, whose failure is no one's error (its READ comes later, if ever).
    // `next_end`: the copy goes on to there (a read-ahead stream's end); the chunk
    // after each is asked of the blob before the chunk in hand is written, so its
    // read overlaps that write (BlobSource::will_need).
    bool copy_range(Object& object, ByteRange range, const kmsg::ReadRequest& request, bool ahead,
                    std::uint64_t next_end = 0);
    // One cache-file write of copy_range; a READ's waits for room (kCacheRoomWait),
    // out of room_wait_left_.
    [[nodiscard]] Status write_block(int anon_fd, std::span<const std::byte> data, std::uint64_t offset, bool ahead);
    void drop_object(std::uint32_t object_id);
    // Keeps `object` as `object_id`, closing the least recently read copy first when
    // max_objects_ are kept already.
    Object& keep_object(std::uint32_t object_id, Object object);
    // A spare's first READ after a failover is the first time its process runs the
    // READ path: the blob read, the cache file's probes and write. In the test VM
    // (TCG) that first pass cost about 3 ms against under 1 ms later, and it sits on
    // the failover's critical path. So a spare runs that path once ahead of need,
    // on a copy handed over to it: it writes the first block the cache file lacks
    // (real blob bytes where the kernel would want them, as read-ahead does) and
    // completes no request. Counters are left as they were.
    void rehearse_read(std::uint32_t object_id);
    void plan_stream(Object& object, ByteRange ahead, const kmsg::ReadRequest& request);
    void reply_copen(std::uint32_t msg_id, std::int64_t size_or_negative_errno);

    KernelIo& kernel_;
    VolumeRouter blobs_;
    SupervisorLink& supervisor_;
    ReadAheadPolicy read_ahead_;
    std::unordered_map<std::uint32_t, Object> objects_;
    std::size_t max_objects_ = kMaxServedObjects;
    std::uint64_t use_clock_ = 0;
    // A copy handed over ahead of need, not used yet, and its blob if opened ahead.
    struct HeldShare {
        SharedObject object;
        std::unique_ptr<BlobSource> blob;
    };
    // Never an id of objects_.
    std::unordered_map<std::uint32_t, HeldShare> shared_;
    std::deque<AheadStream> streams_;  // front: the next to write a chunk of
    AlignedBytes buffer_;  // kCopyChunkSize (allocate_copy_buffer)
    RequestCounters counters_;
    bool paused_ = true;
    bool rehearsed_ = false;
    // What the READ in hand may still wait for room (set by handle_read).
    std::chrono::milliseconds room_wait_left_{0};
    // Until when READs do not wait for room: one waited in vain (kCacheFullHold).
    std::optional<std::chrono::steady_clock::time_point> cache_full_until_;
};

}  // namespace cfs::worker
