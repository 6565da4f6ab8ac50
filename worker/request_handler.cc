#include "worker/request_handler.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

#include "common/blob_name.h"
#include "common/fault_point.h"
#include "common/log.h"

namespace cfs::worker {
namespace {

std::uint64_t round_down(std::uint64_t v) { return v / kCacheBlockSize * kCacheBlockSize; }
std::uint64_t round_up(std::uint64_t v) { return round_down(v + kCacheBlockSize - 1); }

// The kernel's view of one object's cache file. A failed lseek (ENOBUFS: the object
// was closed under us) reads as "nothing there", which at worst writes bytes again.
class AnonFdPresence final : public CachePresence {
public:
    AnonFdPresence(KernelIo& kernel, int anon_fd) : kernel_(kernel), fd_(anon_fd) {}
    std::uint64_t hole_from(std::uint64_t pos) override {
        auto at = kernel_.seek(fd_, pos, KernelIo::Seek::hole);
        return at ? *at : pos;
    }
    std::uint64_t data_from(std::uint64_t pos) override {
        auto at = kernel_.seek(fd_, pos, KernelIo::Seek::data);
        return at ? *at : UINT64_MAX;
    }

private:
    KernelIo& kernel_;
    int fd_;
};

}  // namespace

RequestHandler::RequestHandler(KernelIo& kernel, VolumeRouter blobs, SupervisorLink& supervisor,
                               std::uint64_t read_ahead_max, AlignedBytes copy_buffer)
    : kernel_(kernel),
      blobs_(std::move(blobs)),
      supervisor_(supervisor),
      read_ahead_(read_ahead_max, kCacheBlockSize),
      buffer_(std::move(copy_buffer)) {
    if (!buffer_) throw std::bad_alloc();
}

Status RequestHandler::handle(std::span<const std::byte> message) {
    auto request = kmsg::decode(message);
    if (!request) return handle_malformed(message, request.error());
    return std::visit(
        [this](auto& r) -> Status {
            using T = std::decay_t<decltype(r)>;
            if constexpr (std::is_same_v<T, kmsg::OpenRequest>) return handle_open(r);
            else if constexpr (std::is_same_v<T, kmsg::ReadRequest>) return handle_read(r);
            else return handle_close(r);
        },
        *request);
}

void RequestHandler::reply_copen(std::uint32_t msg_id, std::int64_t size_or_negative_errno) {
    // A failed copen leaves the request pending with no one to answer it; the kernel
    // only refuses one whose msg_id is gone (the opener gave up), so a log is all we can do.
    if (auto written = kernel_.write_command(kmsg::format_copen(msg_id, size_or_negative_errno)); !written)
        log::error("{}", written.error().message());
}

Status RequestHandler::handle_open(kmsg::OpenRequest& r) {
    ++counters_.opens;
    if (!kernel_.is_cache_anon_fd(r.fd)) {
        // Not ours to close: the number names something else in this process.
        log::error("OPEN msg_id {} object {} names fd {}, which is not a cachefiles anon fd",
                   r.msg_id, r.object_id, r.fd);
        ++counters_.opens_refused;
        reply_copen(r.msg_id, -EIO);
        return {};
    }
    unique_fd anon(r.fd);
    reach(FaultPoint::open_received);
    // The kernel installs anon fds without close-on-exec.
    (void)::fcntl(anon.get(), F_SETFD, FD_CLOEXEC);

    const std::string blob_name = kmsg::printable(r.cookie_key);
    // The cookie key comes from whoever mounted; no backend sees a name that could
    // leave the blob directory, whatever its own checks are.
    if (auto valid = validate_blob_name(r.cookie_key); !valid) {
        ++counters_.opens_refused;
        log::warning("OPEN of object {} refused: volume \"{}\" blob \"{}\": {}", r.object_id,
                     kmsg::printable(r.volume_key), blob_name, valid.error().message());
        reply_copen(r.msg_id, -valid.error().errnum);
        return {};
    }
    auto blob = blobs_.open(r.volume_key, r.cookie_key);
    if (!blob) {
        ++counters_.opens_refused;
        const int err = blob.error().errnum != 0 ? blob.error().errnum : EIO;
        log::warning("OPEN of object {} refused: volume \"{}\" blob \"{}\": {}", r.object_id,
                     kmsg::printable(r.volume_key), blob_name, blob.error().message());
        reply_copen(r.msg_id, -err);
        return {};  // anon fd closes here, which lets the kernel drop the object
    }

    wire::ObjectDescription description{r.object_id, (*blob)->size(), r.volume_key, r.cookie_key};
    if (auto shared = supervisor_.object_opened(description, anon.get()); !shared) return shared;
    reach(FaultPoint::open_before_copen);

    if (auto written = kernel_.write_command(kmsg::format_copen(r.msg_id, static_cast<std::int64_t>((*blob)->size())));
        !written) {
        ++counters_.opens_refused;
        log::warning("OPEN of object {} (volume \"{}\" blob \"{}\") could not be answered: {}",
                     r.object_id, kmsg::printable(r.volume_key), blob_name, written.error().message());
        return supervisor_.object_closed(r.object_id);
    }
    reach(FaultPoint::open_after_copen);
    log::debug("object {} open: volume \"{}\" blob \"{}\" size {}", r.object_id,
               kmsg::printable(r.volume_key), blob_name, (*blob)->size());
    const std::uint64_t size = (*blob)->size();
    (void)keep_object(r.object_id, Object{std::move(anon), std::move(*blob), std::move(r.volume_key),
                                          std::move(r.cookie_key), size});
    return supervisor_.object_copened(r.object_id);
}

Result<RequestHandler::Object*> RequestHandler::find_object(std::uint32_t object_id) {
    if (auto it = objects_.find(object_id); it != objects_.end()) {
        it->second.last_used = ++use_clock_;
        // Tried again at every READ until it opens: one failed open (a remote store's
        // 503, a full fd table) must not fail every later READ of the object here.
        if (!it->second.blob) open_blob(object_id, it->second);
        return &it->second;
    }
    SharedObject shared;
    std::unique_ptr<BlobSource> opened_ahead;
    if (auto it = shared_.find(object_id); it != shared_.end()) {
        shared = std::move(it->second.object);
        opened_ahead = std::move(it->second.blob);
        shared_.erase(it);
        ++counters_.shares_used;
    } else {
        ++counters_.queries;
        auto asked = supervisor_.query_object(object_id);
        if (!asked) return std::move(asked).error();
        if (!*asked) return static_cast<Object*>(nullptr);
        shared = std::move(**asked);
        // A copy handed over ahead of need may have come while we waited: one will do.
        shared_.erase(object_id);
    }
    auto& d = shared.description;
    Object object{std::move(shared.anon_fd), std::move(opened_ahead), d.volume_key, d.cookie_key, d.size};
    if (!object.blob) open_blob(object_id, object);
    return &keep_object(object_id, std::move(object));
}

RequestHandler::Object& RequestHandler::keep_object(std::uint32_t object_id, Object object) {
    if (!objects_.contains(object_id) && objects_.size() >= max_objects_ && !objects_.empty()) {
        const auto oldest = std::min_element(objects_.begin(), objects_.end(), [](const auto& a, const auto& b) {
            return a.second.last_used < b.second.last_used;
        });
        ++counters_.objects_let_go;
        log::debug("object {}: closed this worker's copy, the least recently read of {} (the supervisor keeps one; "
                   "a READ asks for it again)",
                   oldest->first, objects_.size());
        drop_object(oldest->first);
    }
    object.last_used = ++use_clock_;
    return objects_.insert_or_assign(object_id, std::move(object)).first->second;
}

void RequestHandler::open_blob(std::uint32_t object_id, Object& object) {
    // With the object's size: a remote store is not asked for it again while the
    // READ waits.
    // (A local store refuses a file of another size: BlobBackend::open_with_size.)
    auto blob = blobs_.open_with_size(object.volume_key, object.cookie_key, object.size);
    if (blob)
        object.blob = std::move(*blob);
    else
        log::error("object {} (volume \"{}\" blob \"{}\") cannot be read by this worker: {}; its READs here "
                   "fail until it opens",
                   object_id, kmsg::printable(object.volume_key), kmsg::printable(object.cookie_key),
                   blob.error().message());
}

bool RequestHandler::copy_range(Object& object, ByteRange range, const kmsg::ReadRequest& r, bool ahead,
                                std::uint64_t next_end) {
    if (!object.blob) return false;
    next_end = std::max(next_end, range.end);
    for (std::uint64_t pos = range.begin; pos < range.end;) {
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kCopyChunkSize, range.end - pos));
        auto got = object.blob->read_at(std::span(buffer_.get(), want), pos);
        if (!got) {
            if (ahead)
                log::debug("read-ahead for object {} stopped at offset {}: {}", r.object_id, pos,
                           got.error().message());
            else
                log::error("READ of object {} (volume \"{}\" blob \"{}\") failed at offset {}: {}",
                           r.object_id, kmsg::printable(object.volume_key),
                           kmsg::printable(object.cookie_key), pos, got.error().message());
            return false;
        }
        // The blob's last block is padded with zeros, as a cache file block must be
        // whole; nothing past that block is ever written, so a short blob stays short.
        const std::size_t block_len = static_cast<std::size_t>(round_up(*got));
        std::memset(buffer_.get() + *got, 0, block_len - *got);
        if (armed(FaultPoint::read_mid_copy) && block_len > kCacheBlockSize) {
            // Test builds: die with the range half written (READs are rarely longer
            // than one chunk, so "between chunks" would hardly ever happen).
            (void)kernel_.write_cache(object.anon_fd.get(), std::span(buffer_.get(), kCacheBlockSize), pos);
            reach(FaultPoint::read_mid_copy);
        }
        if (const std::uint64_t next = pos + want; next < next_end)
            object.blob->will_need(next, std::min<std::uint64_t>(kCopyChunkSize, next_end - next));
        // Two workers' read-ahead through one cache file can reach the same piece
        // together, each having asked the cache file before reading the blob. The
        // one that finds the piece written by then leaves it: in the VM, 2 workers
        // wrote 274 MiB for the 256 MiB file (median of six rounds) against 292.
        const bool written_meanwhile =
            ahead && block_len > 0 &&
            AnonFdPresence(kernel_, object.anon_fd.get()).hole_from(pos) >= pos + block_len;
        if (written_meanwhile) ++counters_.ahead_pieces_written_meanwhile;
        if (block_len > 0 && !written_meanwhile) {
            if (auto written = write_block(object.anon_fd.get(), std::span(buffer_.get(), block_len), pos, ahead);
                !written) {
                log::error("{} of object {} (volume \"{}\" blob \"{}\"): {}", ahead ? "read-ahead" : "READ",
                           r.object_id, kmsg::printable(object.volume_key), kmsg::printable(object.cookie_key),
                           written.error().message());
                return false;
            }
            counters_.bytes_written += block_len;
            if (ahead) counters_.bytes_ahead += block_len;
        }
        // Short only when a block asked for is missing: the blob's last block is
        // whole once padded.
        if (block_len < want) {
            if (ahead)
                log::debug("read-ahead for object {} stopped at offset {}: the blob ends there", r.object_id,
                           pos + *got);
            else
                log::warning("READ of object {} (volume \"{}\" blob \"{}\") wants {} bytes at {}, but the "
                             "blob ends at {}",
                             r.object_id, kmsg::printable(object.volume_key),
                             kmsg::printable(object.cookie_key), r.length, r.offset, pos + *got);
            return false;
        }
        pos += want;
    }
    return true;
}

Status RequestHandler::write_block(int anon_fd, std::span<const std::byte> data, std::uint64_t offset,
                                   bool ahead) {
    auto written = kernel_.write_cache(anon_fd, data, offset);
    if (written || ahead || written.error().errnum != ENOBUFS) return written;
    // The kernel says ENOBUFS also for an object closed under us (withdrawn, or its
    // image unmounted); its cache file then answers no lseek either, and waiting
    // would not help.
    if (auto probe = kernel_.seek(anon_fd, offset, KernelIo::Seek::data); !probe && probe.error().errnum == ENOBUFS)
        return written;
    if (cache_full_until_ && kernel_.now() < *cache_full_until_) return written;
    if (room_wait_left_ <= std::chrono::milliseconds::zero()) return written;
    ++counters_.room_waits;
    std::chrono::milliseconds waited{0};
    while (room_wait_left_ > std::chrono::milliseconds::zero()) {
        const auto step = std::min(kCacheRoomRetry, room_wait_left_);
        kernel_.wait(step);
        waited += step;
        room_wait_left_ -= step;
        written = kernel_.write_cache(anon_fd, data, offset);
        if (written) {
            cache_full_until_.reset();
            log::warning("the cache was full: a READ's write into its cache file waited {} ms for the supervisor "
                         "to cull",
                         waited.count());
            return written;
        }
        if (written.error().errnum != ENOBUFS) return written;
    }
    cache_full_until_ = kernel_.now() + kCacheFullHold;
    log::error("the cache is still full after a READ waited {} ms for room: for {} s, READs that need a write "
               "fail at once",
               waited.count(), kCacheFullHold.count());
    return written;
}

Status RequestHandler::handle_read(const kmsg::ReadRequest& r) {
    ++counters_.reads;
    room_wait_left_ = kCacheRoomWait;
    auto found = find_object(r.object_id);
    if (!found) return std::move(found).error();
    Object* object = *found;
    if (object == nullptr) {
        // Only an object dropped after its owner died can be unknown; the supervisor's
        // `restore` that follows every such drop delivers this READ again.
        log::warning("READ msg_id {} for unknown object {} left for redelivery", r.msg_id, r.object_id);
        return {};
    }
    reach(FaultPoint::read_stall);
    // Cache files take direct I/O: whole blocks only. A range the kernel asks for is
    // already aligned; widening an unaligned one only rewrites bytes with themselves.
    AnonFdPresence cache(kernel_, object->anon_fd.get());
    const ByteRange own = read_ahead_.own_range(r.offset, r.length, cache);
    bool whole = true;
    if (own.empty())
        ++counters_.reads_already_written;
    else if (!copy_range(*object, own, r, false))
        whole = false;
    if (!whole)
        ++counters_.reads_short;
    else if (!own.empty() && object->blob)
        plan_stream(*object, read_ahead_.plan_ahead(read_ahead_.widen(r.offset, r.length), object->blob->size(), cache), r);
    reach(FaultPoint::read_before_complete);
    // Completed even when data is missing: the kernel then finds the hole and fails
    // the reader's read() at once, instead of leaving it waiting on us.
    if (auto completed = kernel_.complete_read(object->anon_fd.get(), r.msg_id); !completed) {
        // EINVAL: no longer pending (answered twice after a restore); harmless.
        if (completed.error().errnum == EINVAL)
            log::debug("{}", completed.error().message());
        else
            log::error("{} (object {})", completed.error().message(), r.object_id);
    }
    return {};
}

Status RequestHandler::handle_close(const kmsg::CloseRequest& r) {
    ++counters_.closes;
    reach(FaultPoint::close_received);
    if (auto it = objects_.find(r.object_id); it != objects_.end())
        log::debug("object {} closed: volume \"{}\" blob \"{}\"", r.object_id,
                   kmsg::printable(it->second.volume_key), kmsg::printable(it->second.cookie_key));
    drop_object(r.object_id);  // a copy handed over ahead of need too
    // The supervisor and other workers hold copies too; the object is released when
    // the last one closes.
    return supervisor_.object_closed(r.object_id);
}

Status RequestHandler::handle_malformed(std::span<const std::byte> message, const Error& why) {
    ++counters_.malformed;
    log::error("rejected a message from the kernel: {}", why.message());
    const auto header = kmsg::peek_header(message);
    if (!header) return {};
    if (header->opcode == static_cast<std::uint32_t>(kmsg::Opcode::open)) {
        if (auto fd = kmsg::peek_open_fd(message); fd && kernel_.is_cache_anon_fd(*fd)) {
            unique_fd stray(*fd);  // closed here: the kernel drops the object with it
        }
        reply_copen(header->msg_id, -EINVAL);
    } else if (header->opcode == static_cast<std::uint32_t>(kmsg::Opcode::read)) {
        // Fail the reader fast rather than leave it waiting: through the object's anon
        // fd, found as a READ finds it (held here, a copy held unused, or one asked of
        // the supervisor). Without one it waits for the next `restore`, as any READ of
        // an unknown object does.
        auto found = find_object(header->object_id);
        if (!found) return std::move(found).error();
        if (*found != nullptr) (void)kernel_.complete_read((*found)->anon_fd.get(), header->msg_id);
    } else if (header->opcode == static_cast<std::uint32_t>(kmsg::Opcode::close)) {
        // Its header names the object, which the kernel has let go of: as a valid
        // CLOSE, or every copy (ours, the supervisor's, the spares') keeps the object
        // open and its cache file unculled for good.
        return handle_close(kmsg::CloseRequest{header->msg_id, header->object_id});
    }
    return {};
}

void RequestHandler::plan_stream(Object& object, ByteRange ahead, const kmsg::ReadRequest& request) {
    if (ahead.empty()) return;
    // Its first chunk is read while the READ is completed and the next request waits.
    object.blob->will_need(ahead.begin, std::min<std::uint64_t>(kCopyChunkSize, ahead.end - ahead.begin));
    // The newest READ of an object says best where its reader is.
    const std::uint32_t id = request.object_id;
    std::erase_if(streams_, [id](const AheadStream& s) { return s.object_id == id; });
    if (streams_.size() >= kMaxStreams) streams_.pop_front();
    streams_.push_back({id, ahead, request});
}

void RequestHandler::write_ahead_step() {
    if (streams_.empty()) return;
    AheadStream stream = std::move(streams_.front());
    streams_.pop_front();
    // The object may be gone since (a CLOSE or an ObjectForget came in between).
    auto it = objects_.find(stream.object_id);
    if (it == objects_.end() || !it->second.blob) return;
    Object& object = it->second;
    // A reader the read-ahead keeps ahead of sends no READs: its object is in use.
    object.last_used = ++use_clock_;
    // Skip what is there already: the reader's own READs, or another worker's read-ahead.
    AnonFdPresence cache(kernel_, object.anon_fd.get());
    const std::uint64_t begin = round_down(cache.hole_from(stream.left.begin));
    if (begin >= stream.left.end) return;
    const ByteRange chunk{begin, std::min({stream.left.end, begin + kCopyChunkSize,
                                           std::max(begin + kCacheBlockSize, round_down(cache.data_from(begin)))})};
    if (!copy_range(object, chunk, stream.request, true, stream.left.end)) return;
    stream.left.begin = chunk.end;
    if (!stream.left.empty()) streams_.push_back(std::move(stream));
}

void RequestHandler::forget(std::uint32_t object_id) { drop_object(object_id); }

void RequestHandler::take_shared(SharedObject object) {
    const auto id = object.description.object_id;
    if (objects_.contains(id) || shared_.contains(id)) {
        // The same object (the kernel gives an id to no other while any copy is
        // open): a second copy would only cost an fd. Closed here.
        ++counters_.shares_closed;
        log::debug("object {}: closed a second copy handed over ahead of need", id);
        return;
    }
    if (shared_.size() >= wire::kMaxSharedObjects) {
        ++counters_.shares_closed;
        log::debug("object {}: {} copies kept unused already; a READ will ask for it", id, shared_.size());
        return;
    }
    ++counters_.shares_kept;
    const auto& d = object.description;
    auto blob = paused_ ? blobs_.open_ahead(d.volume_key, d.cookie_key, d.size) : nullptr;
    if (blob) {
        ++counters_.shares_opened_ahead;
        log::debug("object {}: blob \"{}\" opened ahead of need", id, kmsg::printable(d.cookie_key));
    }
    const bool rehearse = blob && !rehearsed_;
    shared_.emplace(id, HeldShare{std::move(object), std::move(blob)});
    if (rehearse) rehearse_read(id);
}

void RequestHandler::rehearse_read(std::uint32_t object_id) {
    rehearsed_ = true;
    const RequestCounters counted = counters_;
    // A copy held here: no ObjectQuery. It is then served from objects_, as the first
    // READ for it would have left it.
    auto found = find_object(object_id);
    if (found && *found != nullptr && (*found)->blob) {
        Object& object = **found;
        AnonFdPresence cache(kernel_, object.anon_fd.get());
        const kmsg::ReadRequest rehearsal{0, object_id, round_down(cache.hole_from(0)), kCacheBlockSize};
        const ByteRange own = read_ahead_.own_range(rehearsal.offset, rehearsal.length, cache);
        // As read-ahead: a failure is logged at debug level and harms no one.
        if (!own.empty() && own.begin < object.blob->size()) (void)copy_range(object, own, rehearsal, true);
        (void)read_ahead_.plan_ahead(read_ahead_.widen(rehearsal.offset, rehearsal.length), object.blob->size(),
                                     cache);
    }
    const std::uint64_t let_go = counters_.objects_let_go;  // a real copy closed, rehearsal or not
    counters_ = counted;
    counters_.objects_let_go = let_go;
    log::debug("object {}: rehearsed the READ path", object_id);
}

void RequestHandler::drop_object(std::uint32_t object_id) {
    objects_.erase(object_id);
    shared_.erase(object_id);
    std::erase_if(streams_, [object_id](const AheadStream& s) { return s.object_id == object_id; });
}

}  // namespace cfs::worker
