#include "supervisor/fault_dealer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <string_view>

#include <fmt/format.h>

#include "common/unique_fd.h"

namespace cfs::supervisor {

Result<FaultPoint> FaultDealer::next_worker() {
    unique_fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) {
        if (errno == ENOENT) {
            last_content_.clear();
            last_version_.clear();
            handed_out_ = 0;
            return FaultPoint::none;
        }
        return sys_error(fmt::format("opening fault file {}", path_));
    }
    struct stat st{};
    if (::fstat(fd.get(), &st) < 0) return sys_error(fmt::format("reading fault file {}", path_));
    std::array<char, 128> buffer{};
    const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0) return sys_error(fmt::format("reading fault file {}", path_));
    // A file written again with the same text (a new inode or mtime) starts a new count.
    const std::string version = fmt::format("{}:{}.{}", st.st_ino, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    return next_worker_from(std::string(buffer.data(), static_cast<std::size_t>(n)), version);
}

Result<FaultPoint> FaultDealer::next_worker_from(const std::string& content, std::string_view version) {
    if (content != last_content_ || version != last_version_) {
        last_content_ = content;
        last_version_ = version;
        handed_out_ = 0;
    }
    std::string_view text = content;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
    const std::size_t space = text.find(' ');
    const std::string_view name = text.substr(0, space);
    const auto point = parse_fault_point(name);
    if (!point)
        return logic_error(fmt::format("{}:1: unknown fault point \"{}\" (expected one of: {})",
                                       path_, name, known_fault_points()));
    if (space == std::string_view::npos) return *point;
    const std::string_view count_text = text.substr(space + 1);
    unsigned count = 0;
    const auto [end, ec] = std::from_chars(count_text.data(), count_text.data() + count_text.size(), count);
    if (ec != std::errc() || end != count_text.data() + count_text.size() || count == 0)
        return logic_error(fmt::format("{}:1: expected a worker count (a positive integer) after the fault point, "
                                       "got \"{}\"",
                                       path_, count_text));
    if (handed_out_ >= count) return FaultPoint::none;
    ++handed_out_;
    return *point;
}

}  // namespace cfs::supervisor
