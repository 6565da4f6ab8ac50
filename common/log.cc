#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace cfs::log {
namespace {
std::atomic<Level> g_level{Level::info};
std::string g_identity = "cfsupervisor";
}  // namespace

std::optional<Level> parse_level(std::string_view name) {
    if (name == "debug") return Level::debug;
    if (name == "info") return Level::info;
    if (name == "warning") return Level::warning;
    if (name == "error") return Level::error;
    return std::nullopt;
}

std::string_view level_name(Level l) {
    switch (l) {
        case Level::debug: return "debug";
        case Level::info: return "info";
        case Level::warning: return "warning";
        case Level::error: return "error";
    }
    return "?";
}

void set_level(Level l) { g_level = l; }
Level level() { return g_level; }
void set_identity(std::string identity) { g_identity = std::move(identity); }

void write(Level l, std::string_view message, std::initializer_list<Field> fields) {
    if (l < g_level) return;
    // One write() per line so lines from several processes sharing stderr never
    // interleave mid-line.
    std::string line = fmt::format("{}[{}]: {}: {}", g_identity, ::getpid(), level_name(l), message);
    for (const auto& [key, value] : fields) line += fmt::format(" {}={}", key, value);
    line += '\n';
    (void)!::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace cfs::log
