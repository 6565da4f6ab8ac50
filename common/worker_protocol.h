// The supervisor <-> worker protocol: the whole privilege boundary.
//
// Transport: one SOCK_SEQPACKET socketpair per worker (fd 3 in the worker). One
// datagram is one message, at most kMaxMessageSize bytes:
//     u32 type | fields in declaration order (u32/u64 host-endian; strings as
//     u16 length + bytes)
// Exactly the fds a type declares travel with it (SCM_RIGHTS); a message with any
// other number is rejected. Who speaks first, and what answers what:
//
//   type            dir   fds                 answers / meaning
//   Init            S->W  device,             first message (common/worker_stats.h: a
//                         stats page          sealed memfd the worker maps and writes
//                                             its figures to); says how many blob
//                                             stores follow
//   BlobStore       S->W  -                   right after Init, one per store, in order:
//                                             store 0 is [blobs], store n the n-th
//                                             [[volume]] (its name); with a url, the
//                                             addresses the supervisor resolved for its
//                                             hosts (the worker has no DNS) and its
//                                             credentials
//   BlobStoreDir    S->W  directory           right after a BlobStore that has_dir: its
//                                             directory; the worker starts serving once
//                                             the last store is complete
//   Ready           W->S  -                   worker is up (and paused)
//   ObjectOpened    W->S  anon fd             worker read an OPEN and found the blob;
//                                             it waits for ObjectAck before copen
//   ObjectAck       S->W  -                   supervisor holds its copy of the anon fd
//   ObjectCopened   W->S  -                   the kernel accepted the copen
//   ObjectQuery     W->S  -                   worker read a READ for an object another
//                                             worker opened; waits for Info/Unknown
//   ObjectInfo      S->W  anon fd             answer to ObjectQuery
//   ObjectUnknown   S->W  -                   answer to ObjectQuery: no such object
//                                             (it was dropped; the request will be
//                                             delivered again after `restore`)
//   ObjectClosed    W->S  -                   worker read CLOSE (or a copen failed)
//   ObjectForget    S->W  -                   close your copy of this object's anon fd
//                                             (sent to every worker, spares included)
//   Pause           S->W  -                   finish the request in hand, then stop
//                                             reading the device and answer Paused
//   Paused          W->S  -                   answer to Pause: nothing in flight here
//   Resume          S->W  -                   read the device (again)
//   Progress        W->S  -                   answered its first READ since Resume
//                                             (a worker that got this far is not
//                                             crash-looping; also times failovers,
//                                             with when that READ was answered)
//   ObjectShare     S->W  anon fd             unasked, no answer: a copy of an object
//                                             another worker opened and copened, sent
//                                             to a spare (a paused worker kept to take
//                                             over) so that it answers READs without
//                                             an ObjectQuery once resumed; at most
//                                             kMaxSharedObjects per worker
//
// A worker starts paused: it reads no request before its first Resume. Pause/Resume
// order `restore` with live workers (README "Failover"): `restore` re-queues every
// request in flight anywhere, so it is written only while no live worker holds one.
//
// Why the supervisor holds a copy of every anon fd: the kernel releases an object
// only when the last copy closes, so a worker's death never closes objects, and any
// worker can answer any READ. See README "Architecture".
//
// Spares hold copies ahead of need (ObjectShare): a spare is stocked with every
// copened object when it is left paused as a spare (after Ready, or when a serving
// worker is paused for good), and with each object copened while it stays one, so
// a failover's first READ costs no ObjectQuery round trip (README "Failover").
// ObjectQuery stays the fallback for everything a worker was not given. Only copened
// objects are shared: an object whose opener dies before ObjectCopened is closed
// everywhere before `restore` (supervisor/failover.h), and spares, which are not
// paused by a failover, could not say when they closed theirs. A worker never keeps
// two copies of one object (it closes a copy of an object it holds already), and
// keeps at most kMaxSharedObjects copies it has not used yet (it closes the rest).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace cfs::wire {

inline constexpr std::size_t kMaxKeySize = 1024;  // bounded by the kernel's 1024-byte messages
// Room for the largest message, ObjectOpened with two keys of kMaxKeySize, plus its
// fixed fields; a static_assert in worker_protocol.cc checks the arithmetic.
inline constexpr std::size_t kMaxMessageSize = 2 * kMaxKeySize + 64;
// [blobs] and at most 32 [[volume]] tables (common/config.h, kMaxVolumes).
inline constexpr std::uint32_t kMaxBlobStores = 33;
// The most objects the supervisor shares with one worker ahead of need (ObjectShare),
// and the most such copies a worker keeps unused: each costs the worker one fd, two
// with its local blob opened ahead (common/worker_sandbox.h counts them in its
// RLIMIT_NOFILE). Objects beyond it are
// fetched with ObjectQuery when a READ needs them, as before.
inline constexpr std::size_t kMaxSharedObjects = 1024;

enum class Type : std::uint32_t {
    init = 1,
    ready = 2,
    object_opened = 3,
    object_ack = 4,
    object_copened = 5,
    object_query = 6,
    object_info = 7,
    object_unknown = 8,
    object_closed = 9,
    object_forget = 10,
    pause = 11,
    paused = 12,
    resume = 13,
    progress = 14,
    object_share = 15,
    blob_store = 16,
    blob_store_dir = 17,
};

struct Init {
    std::uint32_t worker_id = 0;
    std::uint32_t log_level = 0;
    // Test builds only (CFS_FAULT_INJECTION): worker/fault.h; always 0 otherwise.
    std::uint32_t fault_point = 0;
    // workers.read_ahead_kib: the largest read-ahead window (worker/read_ahead.h).
    std::uint32_t read_ahead_kib = 0;
    // How many BlobStore messages follow (1 + the number of [[volume]] tables).
    std::uint32_t blob_stores = 0;
};
// One blob store (common/config.h, BlobStoreConfig) as the worker needs it.
struct BlobStore {
    std::uint32_t store = 0;    // 0, 1, ... in the order they are sent
    std::uint32_t has_dir = 0;  // 1: a BlobStoreDir with its directory follows
    // Empty for store 0 ([blobs], every volume not named); otherwise the [[volume]]'s
    // name: the kernel's volume key is "erofs,<volume>".
    std::string volume;
    // The store's url (common/blob_url.h); empty: local blobs only.
    std::string url;
    // What the hosts of url and origins resolved to in the supervisor, one line each,
    // as curl's CURLOPT_RESOLVE takes them: "host:port:addr[,addr]..." (IPv6 in
    // brackets), lines separated by '\n'.
    std::string resolve;
    // The contents of the store's credentials file ("user:password"), read by the
    // supervisor from a file only root can read; empty: anonymous. Neither side logs it.
    std::string credentials;
    // The store's allowed_origins: "scheme://host:port" lines separated by '\n'; the
    // only origins besides url's the worker may contact for it (token realm, blob store).
    std::string origins;
};
struct BlobStoreDir { std::uint32_t store = 0; };
struct Ready {};
struct ObjectDescription {
    std::uint32_t object_id = 0;
    std::uint64_t size = 0;
    std::string volume_key;
    std::string cookie_key;
};
struct ObjectOpened : ObjectDescription {};
struct ObjectInfo : ObjectDescription {};
struct ObjectShare : ObjectDescription {};
struct ObjectAck { std::uint32_t object_id = 0; };
struct ObjectCopened { std::uint32_t object_id = 0; };
struct ObjectQuery { std::uint32_t object_id = 0; };
struct ObjectUnknown { std::uint32_t object_id = 0; };
struct ObjectClosed { std::uint32_t object_id = 0; };
struct ObjectForget { std::uint32_t object_id = 0; };
struct Pause {};
struct Paused {};
struct Resume {};
struct Progress {
    // CLOCK_MONOTONIC (ns) right after the READ's completion: when the reader got its
    // data, which the supervisor learns only a message later. One kernel's clock on
    // both sides (workers get no time namespace).
    std::uint64_t answered_ns = 0;
};

// In Type order: a message's Type is its index here plus one.
using Message = std::variant<Init, Ready, ObjectOpened, ObjectAck, ObjectCopened, ObjectQuery,
                             ObjectInfo, ObjectUnknown, ObjectClosed, ObjectForget, Pause, Paused,
                             Resume, Progress, ObjectShare, BlobStore, BlobStoreDir>;

[[nodiscard]] Type type_of(const Message& m);
[[nodiscard]] std::string_view type_name(std::uint32_t type);
// How many fds travel with a message of this type (unknown types: 0).
[[nodiscard]] std::size_t fd_count(Type type);

[[nodiscard]] std::vector<std::byte> encode(const Message& m);
// Rejects unknown types, truncated or trailing bytes, oversized keys, and an fd count
// other than the type declares.
[[nodiscard]] Result<Message> decode(std::span<const std::byte> bytes, std::size_t fds_received);

}  // namespace cfs::wire
