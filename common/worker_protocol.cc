#include "common/worker_protocol.h"

#include <cstring>
#include <type_traits>

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
        ok = r.u32(m.worker_id) && r.u32(m.log_level);
    } else if constexpr (kIsIdOnly<T>) {
        ok = r.u32(m.object_id);
    } else if constexpr (kIsDescription<T>) {
        ok = r.u32(m.object_id) && r.u64(m.size) && r.str(m.volume_key) && r.str(m.cookie_key);
    }
    if (!ok) return logic_error("truncated or oversized fields");
    if (!r.at_end()) return logic_error("trailing bytes after the last field");
    return Message{std::move(m)};
}

}  // namespace

Type type_of(const Message& m) {
    return std::visit(
        [](const auto& v) -> Type {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, Init>) return Type::init;
            else if constexpr (std::is_same_v<T, Ready>) return Type::ready;
            else if constexpr (std::is_same_v<T, ObjectOpened>) return Type::object_opened;
            else if constexpr (std::is_same_v<T, ObjectAck>) return Type::object_ack;
            else if constexpr (std::is_same_v<T, ObjectCopened>) return Type::object_copened;
            else if constexpr (std::is_same_v<T, ObjectQuery>) return Type::object_query;
            else if constexpr (std::is_same_v<T, ObjectInfo>) return Type::object_info;
            else if constexpr (std::is_same_v<T, ObjectUnknown>) return Type::object_unknown;
            else if constexpr (std::is_same_v<T, ObjectClosed>) return Type::object_closed;
            else return Type::object_forget;
        },
        m);
}

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
    }
    return "unknown";
}

std::size_t fd_count(Type type) {
    switch (type) {
        case Type::init: return 2;
        case Type::object_opened:
        case Type::object_info: return 1;
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
    Result<Message> m = logic_error("");
    switch (type) {
        case Type::init: m = read_body<Init>(r); break;
        case Type::ready: m = read_body<Ready>(r); break;
        case Type::object_opened: m = read_body<ObjectOpened>(r); break;
        case Type::object_ack: m = read_body<ObjectAck>(r); break;
        case Type::object_copened: m = read_body<ObjectCopened>(r); break;
        case Type::object_query: m = read_body<ObjectQuery>(r); break;
        case Type::object_info: m = read_body<ObjectInfo>(r); break;
        case Type::object_unknown: m = read_body<ObjectUnknown>(r); break;
        case Type::object_closed: m = read_body<ObjectClosed>(r); break;
        case Type::object_forget: m = read_body<ObjectForget>(r); break;
        default: return logic_error(fmt::format("unknown message type {}", raw_type));
    }
    if (!m) return logic_error(fmt::format("{} message: {}", type_name(raw_type), m.error().context));
    if (fds_received != fd_count(type))
        return logic_error(fmt::format("{} message carries {} fds, expected {}", type_name(raw_type),
                                       fds_received, fd_count(type)));
    return m;
}

}  // namespace cfs::wire
