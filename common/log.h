// Process-wide logging. Library code logs at debug at most; the caller that decides
// what an error means logs it once. A line may say what it is about in Fields
// (object, volume, cookie key, worker pid, a MESSAGE_ID): the journal backend the
// supervisor installs under systemd keeps them as journal fields; stderr, the
// default and what workers always use, writes the message alone, which names them
// in its text anyway.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace cfs::log {

enum class Level { debug = 0, info = 1, warning = 2, error = 3 };

[[nodiscard]] std::optional<Level> parse_level(std::string_view name);
[[nodiscard]] std::string_view level_name(Level level);

void set_level(Level level);
[[nodiscard]] Level level();
// Prefix every line with this name (e.g. "worker 2"), for processes that share stderr.
void set_identity(std::string identity);

// What a line is about; unset members are left out. For the journal (OBJECT_ID,
// VOLUME, COOKIE_KEY, WORKER_PID, MESSAGE_ID); e.g.
//   log::warning(log::Fields{.worker_pid = pid, .message_id = ids::kWorkerDied}, "...", ...);
struct Fields {
    // Initialised so that designated initialisers may name only some (and GCC's
    // -Wmissing-field-initializers stays quiet).
    std::optional<std::uint64_t> object_id = {};
    std::string_view volume = {};
    std::string_view cookie_key = {};
    std::optional<long> worker_pid = {};
    // 32 lowercase hex digits, a fixed id for a kind of event (journalctl MESSAGE_ID=).
    std::string_view message_id = {};
};

// Where lines go. The default writes "<identity>[<pid>]: <level>: <message>" to
// stderr, one write() per line. A sink must not log itself.
using Sink = void (*)(Level level, std::string_view message, const Fields& fields);
void set_sink(Sink sink);  // nullptr: back to stderr
void write_stderr(Level level, std::string_view message);

void write(Level level, std::string_view message, const Fields& fields = {});

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::debug) write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::info) write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warning(fmt::format_string<Args...> f, Args&&... args) {
    write(Level::warning, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
    write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}

// The same with Fields first.
template <class... Args>
void debug(const Fields& fields, fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::debug) write(Level::debug, fmt::format(f, std::forward<Args>(args)...), fields);
}
template <class... Args>
void info(const Fields& fields, fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::info) write(Level::info, fmt::format(f, std::forward<Args>(args)...), fields);
}
template <class... Args>
void warning(const Fields& fields, fmt::format_string<Args...> f, Args&&... args) {
    write(Level::warning, fmt::format(f, std::forward<Args>(args)...), fields);
}
template <class... Args>
void error(const Fields& fields, fmt::format_string<Args...> f, Args&&... args) {
    write(Level::error, fmt::format(f, std::forward<Args>(args)...), fields);
}

}  // namespace cfs::log
