// Process-wide logging. Library code logs at debug at most; the caller that decides
// what an error means logs it once. Structured fields (OBJECT_ID=..., VOLUME=...) are
// passed as key/value pairs so the journal backend can keep them as fields.
#pragma once

#include <fmt/format.h>

#include <initializer_list>
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

using Field = std::pair<std::string_view, std::string>;

void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

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

}  // namespace cfs::log
