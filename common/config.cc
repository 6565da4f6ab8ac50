#include "common/config.h"
#include "common/blob_url.h"
#include "common/fault_point.h"
#include "common/file_text.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace cfs {
namespace {

constexpr std::int64_t kMinWorkers = 1;
constexpr std::int64_t kMaxWorkers = 64;
constexpr std::int64_t kMaxSpares = 8;
// A window is written through the worker's 1 MiB buffer, chunk by chunk, so a large
// one costs time between requests, not memory.
constexpr std::int64_t kMaxReadAheadKib = 64 * 1024;
// A token service and a blob store, with room for a second of each; every one is
// resolved at start and carried in each worker's Init.
constexpr std::size_t kMaxAllowedOrigins = 4;
// An erofs fsid or domain_id as mount options carry it (no ',' or '='); 255 bytes
// keep the kernel's volume key "erofs,<name>" well within its 1024-byte message.
constexpr std::size_t kMaxVolumeNameLength = 255;
constexpr std::size_t kMaxTagLength = 32;
// The kernel takes free-space limits below 100%.
constexpr std::int64_t kMaxCullPercent = 99;
// useradd's and systemd-sysusers' limit.
constexpr std::size_t kMaxUserNameLength = 32;
// The kernel copies paths with getname(): PATH_MAX (4096) bytes including the NUL.
constexpr std::size_t kMaxPathBytes = 4095;
// The kernel takes a command of at most a page less one byte (cachefiles_daemon_write),
// and cache.dir goes to it as "dir <path>".
constexpr std::size_t kMaxCacheDirBytes = kMaxPathBytes - 4;
// A config file is a few hundred bytes; anything this big is the wrong file (or
// /dev/zero), and reading it unbounded would never finish.
constexpr std::size_t kMaxFileBytes = std::size_t{1} << 20;
// Values quoted back in messages are cut here so the line stays readable.
constexpr std::size_t kMaxQuotedBytes = 200;

// ---- Rendering text into a one-line message -----------------------------------

// Escapes control characters (and, when `quote` is set, '"' and '\\') TOML-style so
// that whatever the file or the caller holds, the message stays on one line.
std::string escape(std::string_view s, bool quote) {
    std::string out;
    out.reserve(s.size());
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '\n': out += "\\n"; continue;
            case '\r': out += "\\r"; continue;
            case '\t': out += "\\t"; continue;
            case '"':
            case '\\':
                if (quote) out += '\\';
                out += ch;
                continue;
            default: break;
        }
        if (c < 0x20 || c == 0x7f) {
            out += fmt::format("\\u{:04X}", static_cast<unsigned>(c));
        } else {
            out += ch;
        }
    }
    return out;
}

// A value as a TOML basic string: "/var/cache", "a\nb". Long values are cut (at a
// UTF-8 character boundary) and marked with "...".
std::string quoted(std::string_view s) {
    bool cut = false;
    if (s.size() > kMaxQuotedBytes) {
        std::size_t end = kMaxQuotedBytes;
        while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
        s = s.substr(0, end);
        cut = true;
    }
    return '"' + escape(s, true) + (cut ? "\"..." : "\"");
}

bool is_bare_key(std::string_view k) {
    return !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

// A key as it would be written in the file: cache, "two words".
std::string key_name(std::string_view k) { return is_bare_key(k) ? std::string(k) : quoted(k); }

// A key set off in running text: 'cahce', "two words".
std::string quoted_key(std::string_view k) {
    return is_bare_key(k) ? fmt::format("'{}'", k) : quoted(k);
}

std::string_view type_name(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::table: return "a table";
        case toml::node_type::array:
            return node.as_array()->is_array_of_tables() ? "an array of tables" : "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a floating-point number";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
        case toml::node_type::none: break;
    }
    return "nothing";
}

std::string join(std::span<const std::string_view> names) {
    std::string out;
    for (std::string_view n : names) {
        if (!out.empty()) out += ", ";
        out += n;
    }
    return out;
}

// ---- Schema --------------------------------------------------------------------

struct TableSchema {
    std::string_view name;
    std::span<const std::string_view> keys;
};

constexpr std::string_view kCacheKeys[] = {"dir", "tag", "cull_below_percent", "cull_until_percent",
                                           "refuse_below_percent"};
constexpr std::string_view kBlobsKeys[] = {"dir", "url", "credentials", "allowed_origins"};
constexpr std::string_view kWorkersKeys[] = {"count", "spares", "user", "read_ahead_kib"};
constexpr std::string_view kLogKeys[] = {"level"};
constexpr std::string_view kTestingKeys[] = {"fault_file"};
constexpr std::string_view kControlKeys[] = {"group"};
constexpr std::string_view kVolumeKeys[] = {"name", "dir", "url", "credentials", "allowed_origins"};
constexpr std::string_view kTableNames[] = {"cache", "blobs", "volume", "workers", "log", "control"};
constexpr TableSchema kSchema[] = {
    {"cache", kCacheKeys},
    {"blobs", kBlobsKeys},
    {"volume", kVolumeKeys},  // an array of tables: [[volume]]
    {"workers", kWorkersKeys},
    {"control", kControlKeys},
    {"log", kLogKeys},
    {"testing", kTestingKeys},  // refused in check_schema unless fault injection is built in
};

const TableSchema* find_table_schema(std::string_view name) {
    for (const TableSchema& t : kSchema) {
        if (t.name == name) return &t;
    }
    return nullptr;
}

// ---- Locations -----------------------------------------------------------------

// Where a fault is reported. toml++ counts lines and columns from 1; a node it did
// not place (line 0) is reported at the start of the file.
struct Position {
    std::uint32_t line = 1;
    std::uint32_t column = 1;

    static Position of(const toml::source_position& p) {
        if (p.line == 0) return {};
        return {p.line, p.column == 0 ? 1u : p.column};
    }
    bool operator<(const Position& o) const {
        return line != o.line ? line < o.line : column < o.column;
    }
};

Position position_of(const toml::node& node) { return Position::of(node.source().begin); }

// A key's own position (the name that is wrong), falling back to its value's.
Position position_of(const toml::key& key, const toml::node& value) {
    if (key.source().begin.line != 0) return Position::of(key.source().begin);
    return position_of(value);
}

class Checker {
public:
    explicit Checker(std::string_view origin) : origin_(escape(origin, false)) {}

    [[nodiscard]] Error at(Position pos, std::string_view what) const {
        return logic_error(fmt::format("{}:{}:{}: {}", origin_, pos.line, pos.column, what));
    }

    [[nodiscard]] Status check_unknown(const toml::table& root) const;
    [[nodiscard]] Result<Config> check_schema(const toml::table& root) const;

private:
    // A table of the schema as found in the file: absent (table == nullptr, reported
    // at 1:1) or where its header (or first dotted key, or inline '{') is.
    struct Section {
        std::string_view name;
        const toml::table* table = nullptr;
        Position pos;
    };

    [[nodiscard]] Result<Section> section(const toml::table& root, std::string_view name) const;
    [[nodiscard]] Result<std::string> path(const Section& s, std::string_view key,
                                           std::string_view dotdot_reason,
                                           std::string_view newline_reason,
                                           std::size_t max_bytes = kMaxPathBytes) const;
    [[nodiscard]] Status tag(const Section& s, Config& config) const;
    [[nodiscard]] Status bounded_integer(const Section& s, std::string_view key, std::int64_t min,
                                         std::int64_t max, unsigned& out) const;
    [[nodiscard]] Status cull_limits(const Section& s, Config& config) const;
    [[nodiscard]] Status worker_user(const Section& s, Config& config) const;
    [[nodiscard]] Status account_name(const Section& s, std::string_view key, std::string_view kind,
                                      std::string& out) const;
    [[nodiscard]] Status log_level(const Section& s, Config& config) const;
    [[nodiscard]] Status blob_store(const Section& s, bool dir_required, BlobStoreConfig& store) const;
    [[nodiscard]] Status blob_url(const Section& s, BlobStoreConfig& store) const;
    [[nodiscard]] Status allowed_origins(const Section& s, BlobStoreConfig& store) const;
    [[nodiscard]] Result<std::vector<VolumeConfig>> volumes(const toml::table& root) const;
    [[nodiscard]] Status volume_name(const Section& s, VolumeConfig& volume) const;

    std::string origin_;
};

// Unknown tables and keys anywhere in the file; the earliest one in the file wins, so
// the order does not depend on how toml++ sorts keys.
Status Checker::check_unknown(const toml::table& root) const {
    std::optional<Position> first_pos;
    std::string first_what;
    auto consider = [&](Position pos, auto&& describe) {
        if (first_pos && !(pos < *first_pos)) return;
        first_pos = pos;
        first_what = describe();
    };

    for (auto&& [key, node] : root) {
        const TableSchema* schema = find_table_schema(key.str());
        if (schema == nullptr) {
            consider(position_of(key, node), [&, &k = key, &n = node] {
                if (n.is_table()) {
                    return fmt::format("unknown table [{}] (known tables: {})", key_name(k.str()),
                                       join(kTableNames));
                }
                return fmt::format(
                    "unknown top-level key {} (every key belongs in one of the tables {})",
                    quoted_key(k.str()), "[cache], [blobs], [[volume]], [workers], [control], [log]");
            });
            continue;
        }
        // A known name of the wrong type is a type error, reported in schema order.
        std::vector<const toml::table*> tables;
        if (const toml::table* table = node.as_table()) tables.push_back(table);
        if (const toml::array* array = node.as_array(); array != nullptr && array->is_array_of_tables())
            for (const toml::node& element : *array) tables.push_back(element.as_table());
        for (const toml::table* table : tables) {
            for (auto&& [sub_key, sub_node] : *table) {
                if (std::find(schema->keys.begin(), schema->keys.end(), sub_key.str()) != schema->keys.end())
                    continue;
                consider(position_of(sub_key, sub_node), [&, &k = sub_key] {
                    return fmt::format("unknown key {} in table [{}] (known keys: {})", quoted_key(k.str()),
                                       schema->name, join(schema->keys));
                });
            }
        }
    }
    if (first_pos) return at(*first_pos, first_what);
    return {};
}

Result<Checker::Section> Checker::section(const toml::table& root, std::string_view name) const {
    const toml::node* node = root.get(name);
    if (node == nullptr) return Section{name, nullptr, Position{}};
    const toml::table* table = node->as_table();
    if (table == nullptr) {
        return at(position_of(*node), fmt::format("{}: expected a table ([{}]), got {}", name, name,
                                                  type_name(*node)));
    }
    return Section{name, table, position_of(*node)};
}

Result<std::string> Checker::path(const Section& s, std::string_view key,
                                  std::string_view dotdot_reason,
                                  std::string_view newline_reason, std::size_t max_bytes) const {
    const std::string what = fmt::format("{}.{}", s.name, key);
    const toml::node* node = s.table != nullptr ? s.table->get(key) : nullptr;
    if (node == nullptr) {
        if (s.table == nullptr) {
            return at(s.pos, fmt::format("missing required key {}: expected an absolute path "
                                         "(there is no [{}] table)",
                                         what, s.name));
        }
        return at(s.pos, fmt::format("missing required key {}: expected an absolute path", what));
    }
    const Position pos = position_of(*node);
    const auto* str = node->as_string();
    if (str == nullptr) {
        return at(pos, fmt::format("{}: expected an absolute path (a string), got {}", what,
                                   type_name(*node)));
    }
    const std::string& value = str->get();
    if (value.empty()) {
        return at(pos, fmt::format("{}: expected an absolute path, got an empty string", what));
    }
    if (value.find('\0') != std::string::npos) {
        return at(pos, fmt::format("{}: expected a path without NUL characters, got {}", what,
                                   quoted(value)));
    }
    if (value.find('\n') != std::string::npos) {
        return at(pos, fmt::format("{}: expected a path without newlines{}, got {}", what,
                                   newline_reason, quoted(value)));
    }
    if (value.front() != '/') {
        return at(pos, fmt::format("{}: expected an absolute path (starting with '/'), got {}",
                                   what, quoted(value)));
    }
    if (value.size() > max_bytes) {
        return at(pos, fmt::format("{}: expected a path of at most {} bytes, got {} bytes", what,
                                   max_bytes, value.size()));
    }
    std::string_view rest = value;
    while (!rest.empty()) {
        const std::size_t slash = rest.find('/');
        const std::string_view component = rest.substr(0, slash);
        if (component == "..") {
            return at(pos, fmt::format("{}: expected a path without '..' components ({}), got {}",
                                       what, dotdot_reason, quoted(value)));
        }
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    return value;
}

Status Checker::tag(const Section& s, Config& config) const {
    const toml::node* node = s.table != nullptr ? s.table->get("tag") : nullptr;
    if (node == nullptr) return {};  // default
    constexpr std::string_view expected =
        "expected 1 to 32 characters of [A-Za-z0-9_.-] (the kernel takes the tag verbatim)";
    const Position pos = position_of(*node);
    const auto* str = node->as_string();
    if (str == nullptr) {
        return at(pos, fmt::format("cache.tag: {}, got {}", expected, type_name(*node)));
    }
    const std::string& value = str->get();
    if (value.empty()) {
        return at(pos, fmt::format("cache.tag: {}, got an empty string", expected));
    }
    for (std::size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (ok) continue;
        // Name the offending character whole, even when it is a multi-byte one.
        std::size_t len = 1;
        while (i + len < value.size() &&
               (static_cast<unsigned char>(value[i + len]) & 0xC0) == 0x80) {
            ++len;
        }
        return at(pos, fmt::format("cache.tag: {}, got {}, which contains '{}'", expected,
                                   quoted(value), escape(value.substr(i, len), false)));
    }
    if (value.size() > kMaxTagLength) {
        return at(pos, fmt::format("cache.tag: {}, got {} characters", expected, value.size()));
    }
    config.cache_tag = value;
    return {};
}

Status Checker::bounded_integer(const Section& s, std::string_view key, std::int64_t min, std::int64_t max,
                                unsigned& out) const {
    const toml::node* node = s.table != nullptr ? s.table->get(key) : nullptr;
    if (node == nullptr) return {};  // default
    const Position pos = position_of(*node);
    const auto* integer = node->as_integer();
    if (integer == nullptr) {
        return at(pos, fmt::format("{}.{}: expected an integer from {} to {}, got {}", s.name, key, min, max,
                                   type_name(*node)));
    }
    // toml++ already rejected anything outside int64; compare in int64, then narrow.
    const std::int64_t value = integer->get();
    if (value < min || value > max)
        return at(pos, fmt::format("{}.{}: expected an integer from {} to {}, got {}", s.name, key, min, max, value));
    out = static_cast<unsigned>(value);
    return {};
}

Status Checker::cull_limits(const Section& s, Config& config) const {
    CullLimits& limits = config.cull_limits;
    struct Limit {
        std::string_view key;
        unsigned& value;
        std::int64_t min;
    };
    // In the order they must rise; each is checked against the one before it. At a
    // refusal limit of 0 the kernel never refuses, and a full disk fails writes with
    // ENOSPC before anything is culled.
    const Limit order[] = {{"refuse_below_percent", limits.stop, 1},
                           {"cull_below_percent", limits.cull, 0},
                           {"cull_until_percent", limits.run, 0}};
    for (const Limit& l : order)
        if (Status st = bounded_integer(s, l.key, l.min, kMaxCullPercent, l.value); !st) return st;
    auto given = [&s](std::string_view key) { return s.table != nullptr && s.table->get(key) != nullptr; };
    for (std::size_t i = 1; i < std::size(order); ++i) {
        const Limit& low = order[i - 1];
        const Limit& high = order[i];
        if (low.value < high.value) continue;
        // Reported at the one the file sets (the later, when it sets both): the other
        // may be a default the operator never wrote.
        const Limit& blamed = given(high.key) ? high : low;
        const Limit& other = &blamed == &high ? low : high;
        const auto value_of = [&](const Limit& l) {
            return given(l.key) ? fmt::format("{}", l.value) : fmt::format("{}, the default", l.value);
        };
        return at(position_of(*s.table->get(blamed.key)),
                  fmt::format("cache.{}: expected {} cache.{} ({}), got {}; the limits must rise from "
                              "refuse_below_percent to cull_below_percent to cull_until_percent",
                              blamed.key, &blamed == &high ? "above" : "below", other.key, value_of(other),
                              blamed.value));
    }
    return {};
}

Status Checker::account_name(const Section& s, std::string_view key, std::string_view kind,
                             std::string& out) const {
    const toml::node* node = s.table != nullptr ? s.table->get(key) : nullptr;
    if (node == nullptr) return {};  // default
    const std::string what = fmt::format("{}.{}", s.name, key);
    const std::string expected =
        fmt::format("expected a {} name: 1 to 32 characters of [A-Za-z0-9_.-], not starting with '-' or '.'", kind);
    const Position pos = position_of(*node);
    const auto* str = node->as_string();
    if (str == nullptr) return at(pos, fmt::format("{}: {}, got {}", what, expected, type_name(*node)));
    const std::string& value = str->get();
    if (value.empty()) return at(pos, fmt::format("{}: {}, got an empty string", what, expected));
    const bool chars_ok = std::all_of(value.begin(), value.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == '-';
    });
    if (!chars_ok || value.front() == '-' || value.front() == '.' || value.size() > kMaxUserNameLength)
        return at(pos, fmt::format("{}: {}, got {}", what, expected, quoted(value)));
    out = value;
    return {};
}

Status Checker::worker_user(const Section& s, Config& config) const {
    std::string user = config.worker_user;
    if (Status st = account_name(s, "user", "user", user); !st) return st;
    if (user == "root")
        return at(position_of(*s.table->get("user")),
                  "workers.user: \"root\" would leave workers privileged; name an unprivileged user "
                  "(the default, \"cfsupervisor-worker\", comes with units/cfsupervisor.sysusers)");
    config.worker_user = user;
    return {};
}

Status Checker::log_level(const Section& s, Config& config) const {
    const toml::node* node = s.table != nullptr ? s.table->get("level") : nullptr;
    if (node == nullptr) return {};  // default
    constexpr std::string_view expected =
        R"(expected one of "debug", "info", "warning", "error")";
    const Position pos = position_of(*node);
    const auto* str = node->as_string();
    if (str == nullptr) {
        return at(pos, fmt::format("log.level: {}, got {}", expected, type_name(*node)));
    }
    const std::optional<log::Level> level = log::parse_level(str->get());
    if (!level) {
        return at(pos, fmt::format("log.level: {}, got {}", expected, quoted(str->get())));
    }
    config.log_level = *level;
    return {};
}

Status Checker::blob_url(const Section& s, BlobStoreConfig& store) const {
    const toml::node* node = s.table != nullptr ? s.table->get("url") : nullptr;
    if (node == nullptr) return {};  // local blobs only
    const Position pos = position_of(*node);
    const auto* str = node->as_string();
    if (str == nullptr)
        return at(pos, fmt::format("{}.url: expected an http:// or https:// URL ending in '/' (a string), got {}",
                                   s.name, type_name(*node)));
    auto url = parse_blob_url(str->get());
    if (!url) return at(pos, fmt::format("{}.url: {}, got {}", s.name, url.error().context, quoted(str->get())));
    store.url = url->text;
    return {};
}

Status Checker::allowed_origins(const Section& s, BlobStoreConfig& store) const {
    const toml::node* node = s.table != nullptr ? s.table->get("allowed_origins") : nullptr;
    if (node == nullptr) return {};
    constexpr std::string_view expected =
        "expected an array of origins, \"http://host[:port]\" or \"https://host[:port]\"";
    const auto* array = node->as_array();
    if (array == nullptr)
        return at(position_of(*node), fmt::format("{}.allowed_origins: {}, got {}", s.name, expected, type_name(*node)));
    if (store.url.empty())
        return at(position_of(*node),
                  fmt::format("{0}.allowed_origins: only means something with {0}.url (hosts a remote worker may "
                              "contact besides it); set {0}.url or remove it",
                              s.name));
    if (array->size() > kMaxAllowedOrigins)
        return at(position_of(*node), fmt::format("{}.allowed_origins: expected at most {} origins, got {}", s.name,
                                                  kMaxAllowedOrigins, array->size()));
    for (const toml::node& element : *array) {
        const Position pos = position_of(element);
        const auto* str = element.as_string();
        if (str == nullptr)
            return at(pos, fmt::format("{}.allowed_origins: {}, got {} in it", s.name, expected, type_name(element)));
        auto origin = parse_blob_origin(str->get());
        if (!origin)
            return at(pos, fmt::format("{}.allowed_origins: {}, got {}", s.name, origin.error().context,
                                       quoted(str->get())));
        store.allowed_origins.push_back(origin_text(*origin));
    }
    return {};
}

// The keys [blobs] and [[volume]] share, in the order they are checked.
Status Checker::blob_store(const Section& s, bool dir_required, BlobStoreConfig& store) const {
    if (dir_required || (s.table != nullptr && s.table->get("dir") != nullptr)) {
        auto dir = path(s, "dir", "after a symlink '..' does not lead where it appears to", "");
        if (!dir) return std::move(dir).error();
        store.dir = std::move(*dir);
    }
    if (Status st = blob_url(s, store); !st) return st;
    if (s.table != nullptr && s.table->get("credentials") != nullptr) {
        auto credentials = path(s, "credentials", "it names one file", "");
        if (!credentials) return std::move(credentials).error();
        if (store.url.empty())
            return at(position_of(*s.table->get("credentials")),
                      fmt::format("{0}.credentials: only means something with {0}.url (credentials for the blob "
                                  "server); set {0}.url or remove it",
                                  s.name));
        store.credentials_file = std::move(*credentials);
    }
    return allowed_origins(s, store);
}

Status Checker::volume_name(const Section& s, VolumeConfig& volume) const {
    const toml::node* node = s.table->get("name");
    constexpr std::string_view expected =
        "expected the erofs fsid or domain_id its images are mounted with: 1 to 255 characters of "
        "[A-Za-z0-9_.:@+-]";
    if (node == nullptr) return at(s.pos, fmt::format("missing required key volume.name: {}", expected));
    const Position pos = position_of(*node);
    const auto* str = node->as_string();
    if (str == nullptr) return at(pos, fmt::format("volume.name: {}, got {}", expected, type_name(*node)));
    const std::string& value = str->get();
    const bool chars_ok = std::all_of(value.begin(), value.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == ':' || c == '@' || c == '+' || c == '-';
    });
    if (value.empty() || !chars_ok || value.size() > kMaxVolumeNameLength)
        return at(pos, fmt::format("volume.name: {}, got {}", expected, quoted(value)));
    volume.name = value;
    return {};
}

Result<std::vector<VolumeConfig>> Checker::volumes(const toml::table& root) const {
    std::vector<VolumeConfig> out;
    const toml::node* node = root.get("volume");
    if (node == nullptr) return out;
    const toml::array* array = node->as_array();
    if (array == nullptr || !array->is_array_of_tables())
        return at(position_of(*node),
                  fmt::format("volume: expected tables written [[volume]], one per volume, got {}", type_name(*node)));
    if (array->size() > kMaxVolumes)
        return at(position_of(*node), fmt::format("volume: expected at most {} [[volume]] tables, got {}", kMaxVolumes,
                                                  array->size()));
    for (const toml::node& element : *array) {
        const Section s{"volume", element.as_table(), position_of(element)};
        VolumeConfig volume;
        if (Status st = volume_name(s, volume); !st) return std::move(st).error();
        for (const VolumeConfig& earlier : out)
            if (earlier.name == volume.name)
                return at(position_of(*s.table->get("name")),
                          fmt::format("volume.name: {} is named by an earlier [[volume]] too; each volume has one "
                                      "store",
                                      quoted(volume.name)));
        if (Status st = blob_store(s, false, volume.blobs); !st) return std::move(st).error();
        if (volume.blobs.dir.empty() && volume.blobs.url.empty())
            return at(s.pos, fmt::format("[[volume]] {}: expected dir, url or both (where its blobs come from)",
                                         quoted(volume.name)));
        out.push_back(std::move(volume));
    }
    return out;
}

Result<Config> Checker::check_schema(const toml::table& root) const {
    Config config;

    auto cache = section(root, "cache");
    if (!cache) return std::move(cache).error();
    auto cache_dir = path(*cache, "dir",
                          "the kernel resolves cache.dir itself, and after a symlink '..' "
                          "does not lead where it appears to",
                          " (it is sent to the kernel as one line of a command)",
                          kMaxCacheDirBytes);
    if (!cache_dir) return std::move(cache_dir).error();
    config.cache_dir = std::move(*cache_dir);
    if (Status st = tag(*cache, config); !st) return std::move(st).error();
    if (Status st = cull_limits(*cache, config); !st) return std::move(st).error();

    auto blobs = section(root, "blobs");
    if (!blobs) return std::move(blobs).error();
    if (Status st = blob_store(*blobs, true, config.blobs); !st) return std::move(st).error();
    auto volumes = this->volumes(root);
    if (!volumes) return std::move(volumes).error();
    config.volumes = std::move(*volumes);

    auto workers = section(root, "workers");
    if (!workers) return std::move(workers).error();
    if (Status st = bounded_integer(*workers, "count", kMinWorkers, kMaxWorkers, config.worker_count); !st)
        return std::move(st).error();
    if (Status st = bounded_integer(*workers, "spares", 0, kMaxSpares, config.spare_count); !st)
        return std::move(st).error();
    if (Status st = worker_user(*workers, config); !st) return std::move(st).error();
    if (Status st = bounded_integer(*workers, "read_ahead_kib", 0, kMaxReadAheadKib, config.read_ahead_kib); !st)
        return std::move(st).error();
    if (config.read_ahead_kib % 4 != 0) {
        // Cache files take whole 4 KiB blocks (direct I/O).
        return at(position_of(*workers->table->get("read_ahead_kib")),
                  fmt::format("workers.read_ahead_kib: expected a multiple of 4 (whole 4 KiB blocks), got {}",
                              config.read_ahead_kib));
    }

    auto control_section = section(root, "control");
    if (!control_section) return std::move(control_section).error();
    if (Status st = account_name(*control_section, "group", "group", config.control_group); !st) return std::move(st).error();

    auto log_section = section(root, "log");
    if (!log_section) return std::move(log_section).error();
    if (Status st = log_level(*log_section, config); !st) return std::move(st).error();

    auto testing = section(root, "testing");
    if (!testing) return std::move(testing).error();
    if (testing->table != nullptr) {
        if (!kFaultInjectionBuilt)
            return at(testing->pos, "table [testing] is for test builds only: fault injection is not compiled into "
                                    "this build (CFS_FAULT_INJECTION=OFF); remove the table");
        auto fault_file = path(*testing, "fault_file", "it names one file", "");
        if (!fault_file) return std::move(fault_file).error();
        config.fault_file = std::move(*fault_file);
    }

    return config;
}

}  // namespace

bool Config::any_remote() const {
    return !blobs.url.empty() ||
           std::any_of(volumes.begin(), volumes.end(), [](const VolumeConfig& v) { return !v.blobs.url.empty(); });
}

Result<Config> parse_config(std::string_view text, std::string_view origin) {
    const Checker checker(origin);
    toml::table root;
    try {
        root = toml::parse(text, std::string_view{origin});
    } catch (const toml::parse_error& e) {
        return checker.at(Position::of(e.source().begin), escape(e.description(), false));
    }
    if (Status st = checker.check_unknown(root); !st) return std::move(st).error();
    return checker.check_schema(root);
}

Result<Config> load_config(const std::string& path) {
    auto text = read_file_text(path, fmt::format("config file {}", escape(path, false)), kMaxFileBytes);
    if (!text) return std::move(text).error();
    return parse_config(*text, path);
}

}  // namespace cfs
