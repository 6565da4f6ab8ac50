#include "common/worker_protocol.h"

#include <cstring>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

namespace cfs::wire {
namespace {

class Writer {
public:
    void u32(std::uint32_t v) { raw(&v, sizeof v); }
    void u64(std::uint64_t v) { raw(&v, sizeof v); }
    void str(std::string_view s) {
        const auto n = static_cast<std::uint16_t>(s.size());
        raw(&n, sizeof n);
        raw(s.data(), s.size());
    }
    std::vector<std::byte> take() { return std::move(out_); }

private:
    void raw(const void* p, std::size_t n) {
        const auto* b = static_cast<const std::byte*>(p);
        out_.insert(out_.end(), b, b + n);
    }
    std::vector<std::byte> out_;
};

class Reader {
public:
    explicit Reader(std::span<const std::byte> in) : in_(in) {}
    bool u32(std::uint32_t& v) { return raw(&v, sizeof v); }
    bool u64(std::uint64_t& v) { return raw(&v, sizeof v); }
    bool str(std::string& s) {
        std::uint16_t n;
        if (!raw(&n, sizeof n) || n > kMaxKeySize || n > in_.size() - pos_) return false;
        s.assign(reinterpret_cast<const char*>(in_.data() + pos_), n);
        pos_ += n;
        return true;
    }
    [[nodiscard]] bool at_end() const { return pos_ == in_.size(); }

private:
    bool raw(void* p, std::size_t n) {
        if (n > in_.size() - pos_) return false;
        std::memcpy(p, in_.data() + pos_, n);
        pos_ += n;
        return true;
    }
    std::span<const std::byte> in_;
    std::size_t pos_ = 0;
};

template <class T>
constexpr bool kIsIdOnly = std::is_same_v<T, ObjectAck> || std::is_same_v<T, ObjectCopened> ||
                           std::is_same_v<T, ObjectQuery> || std::is_same_v<T, ObjectUnknown> ||
                           std::is_same_v<T, ObjectClosed> || std::is_same_v<T, ObjectForget>;
template <class T>
constexpr bool kIsDescription = std::is_base_of_v<ObjectDescription, T>;

template <class T>
Result<Message> read_body(Reader& r) {
    T m{};
    bool ok = true;
    if constexpr (std::is_same_v<T, Init>) {
        ok = r.u32(m.worker_id) && r.u32(m.log_level) && r.u32(m.fault_point) && r.u32(m.read_ahead_kib) &&
             r.u32(m.blob_stores);
    } else if constexpr (std::is_same_v<T, BlobStore>) {
        ok = r.u32(m.store) && r.u32(m.has_dir) && r.str(m.volume) && r.str(m.url) && r.str(m.resolve) &&
             r.str(m.credentials) && r.str(m.origins);
    } else if constexpr (std::is_same_v<T, BlobStoreDir>) {
        ok = r.u32(m.store);
    } else if constexpr (std::is_same_v<T, Progress>) {
        ok = r.u64(m.answered_ns);
    } else if constexpr (kIsIdOnly<T>) {
        ok = r.u32(m.object_id);
    } else if constexpr (kIsDescription<T>) {
        ok = r.u32(m.object_id) && r.u64(m.size) && r.str(m.volume_key) && r.str(m.cookie_key);
    }
    if (!ok) return logic_error("truncated or oversized fields");
    if (!r.at_end()) return logic_error("trailing bytes after the last field");
    return Message{std::move(m)};
}

// Decodes the body of the alternative at `index`.
template <std::size_t... I>
Result<Message> read_any(Reader& r, std::size_t index, std::index_sequence<I...>) {
    Result<Message> m = logic_error("no such message type");
    ((I == index ? (void)(m = read_body<std::variant_alternative_t<I, Message>>(r)) : (void)0), ...);
    return m;
}

}  // namespace

template <Type t, class T>
constexpr bool kTypeIs = std::is_same_v<std::variant_alternative_t<static_cast<std::size_t>(t) - 1, Message>, T>;
static_assert(kTypeIs<Type::init, Init> && kTypeIs<Type::ready, Ready> &&
              kTypeIs<Type::object_opened, ObjectOpened> && kTypeIs<Type::object_ack, ObjectAck> &&
              kTypeIs<Type::object_copened, ObjectCopened> && kTypeIs<Type::object_query, ObjectQuery> &&
              kTypeIs<Type::object_info, ObjectInfo> && kTypeIs<Type::object_unknown, ObjectUnknown> &&
              kTypeIs<Type::object_closed, ObjectClosed> && kTypeIs<Type::object_forget, ObjectForget> &&
              kTypeIs<Type::pause, Pause> && kTypeIs<Type::paused, Paused> && kTypeIs<Type::resume, Resume> &&
              kTypeIs<Type::progress, Progress> && kTypeIs<Type::object_share, ObjectShare> &&
              kTypeIs<Type::blob_store, BlobStore> && kTypeIs<Type::blob_store_dir, BlobStoreDir> &&
              std::variant_size_v<Message> == static_cast<std::size_t>(Type::blob_store_dir));

Type type_of(const Message& m) { return static_cast<Type>(m.index() + 1); }

std::string_view type_name(std::uint32_t type) {
    switch (static_cast<Type>(type)) {
        case Type::init: return "Init";
        case Type::ready: return "Ready";
        case Type::object_opened: return "ObjectOpened";
        case Type::object_ack: return "ObjectAck";
        case Type::object_copened: return "ObjectCopened";
        case Type::object_query: return "ObjectQuery";
        case Type::object_info: return "ObjectInfo";
        case Type::object_unknown: return "ObjectUnknown";
        case Type::object_closed: return "ObjectClosed";
        case Type::object_forget: return "ObjectForget";
        case Type::pause: return "Pause";
        case Type::paused: return "Paused";
        case Type::resume: return "Resume";
        case Type::progress: return "Progress";
        case Type::object_share: return "ObjectShare";
        case Type::blob_store: return "BlobStore";
        case Type::blob_store_dir: return "BlobStoreDir";
    }
    return "unknown";
}

std::size_t fd_count(Type type) {
    switch (type) {
        case Type::init: return 2;
        case Type::object_opened:
        case Type::object_info:
        case Type::object_share:
        case Type::blob_store_dir: return 1;
        default: return 0;
    }
}

// type + object id + size + two length-prefixed keys (prefixes counted at 4 bytes).
static_assert(4 + 4 + 8 + 2 * (4 + kMaxKeySize) <= kMaxMessageSize);

std::vector<std::byte> encode(const Message& m) {
    Writer w;
    w.u32(static_cast<std::uint32_t>(type_of(m)));
    std::visit(
        [&w](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, Init>) {
                w.u32(v.worker_id);
                w.u32(v.log_level);
                w.u32(v.fault_point);
                w.u32(v.read_ahead_kib);
                w.u32(v.blob_stores);
            } else if constexpr (std::is_same_v<T, BlobStore>) {
                w.u32(v.store);
                w.u32(v.has_dir);
                for (const std::string* field : {&v.volume, &v.url, &v.resolve, &v.credentials, &v.origins})
                    w.str(field->substr(0, kMaxKeySize));
            } else if constexpr (std::is_same_v<T, BlobStoreDir>) {
                w.u32(v.store);
            } else if constexpr (std::is_same_v<T, Progress>) {
                w.u64(v.answered_ns);
            } else if constexpr (kIsIdOnly<T>) {
                w.u32(v.object_id);
            } else if constexpr (kIsDescription<T>) {
                w.u32(v.object_id);
                w.u64(v.size);
                w.str(v.volume_key.substr(0, kMaxKeySize));
                w.str(v.cookie_key.substr(0, kMaxKeySize));
            }
        },
        m);
    return w.take();
}

Result<Message> decode(std::span<const std::byte> bytes, std::size_t fds_received) {
    if (bytes.size() > kMaxMessageSize)
        return logic_error(fmt::format("message of {} bytes exceeds {}", bytes.size(), kMaxMessageSize));
    Reader r(bytes);
    std::uint32_t raw_type;
    if (!r.u32(raw_type)) return logic_error(fmt::format("message of {} bytes has no type", bytes.size()));
    const auto type = static_cast<Type>(raw_type);
    if (raw_type == 0 || raw_type > std::variant_size_v<Message>)
        return logic_error(fmt::format("unknown message type {}", raw_type));
    Result<Message> m = read_any(r, raw_type - 1, std::make_index_sequence<std::variant_size_v<Message>>{});
    if (!m) return logic_error(fmt::format("{} message: {}", type_name(raw_type), m.error().context));
    if (fds_received != fd_count(type))
        return logic_error(fmt::format("{} message carries {} fds, expected {}", type_name(raw_type),
                                       fds_received, fd_count(type)));
    return m;
}

}  // namespace cfs::wire
