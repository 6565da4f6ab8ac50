#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace cfs::log {
namespace {
std::atomic<Level> g_level{Level::info};
std::string g_identity = "cfsupervisor";
Sink g_sink = nullptr;
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

void set_sink(Sink sink) { g_sink = sink; }

void write_stderr(Level l, std::string_view message) {
    // One write() per line so lines from several processes sharing stderr never
    // interleave mid-line.
    std::string line = fmt::format("{}[{}]: {}: {}\n", g_identity, ::getpid(), level_name(l), message);
    (void)!::write(STDERR_FILENO, line.data(), line.size());
}

void write(Level l, std::string_view message, const Fields& fields) {
    if (l < g_level) return;
    if (g_sink != nullptr) g_sink(l, message, fields);
    else write_stderr(l, message);
}

}  // namespace cfs::log
