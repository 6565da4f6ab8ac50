#include "common/file_text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include <fmt/format.h>

#include "common/unique_fd.h"

namespace cfs {

Result<std::string> read_file_text(const std::string& path, std::string_view what, std::size_t max_bytes) {
    // O_NONBLOCK: a FIFO (or a device) put where a file belongs would otherwise block
    // the caller in open(), for a reload the supervisor's event loop.
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) return sys_error(fmt::format("opening {}", what));
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return sys_error(fmt::format("inspecting {}", what));
    if (S_ISDIR(st.st_mode)) return sys_error(EISDIR, fmt::format("reading {}", what));
    if (!S_ISREG(st.st_mode)) return sys_error(EINVAL, fmt::format("reading {}: not a regular file", what));
    std::string text;
    std::array<char, 16384> buf;
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return sys_error(fmt::format("reading {}", what));
        }
        if (n == 0) break;
        if (text.size() + static_cast<std::size_t>(n) > max_bytes)
            return sys_error(EFBIG, fmt::format("reading {}: larger than {} bytes", what, max_bytes));
        text.append(buf.data(), static_cast<std::size_t>(n));
    }
    return text;
}

}  // namespace cfs
