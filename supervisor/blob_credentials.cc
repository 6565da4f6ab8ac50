#include "supervisor/blob_credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "common/unique_fd.h"

namespace cfs::supervisor {

Result<std::string> read_blob_credentials(const std::string& path, std::string_view key) {
    // O_NONBLOCK: a FIFO here must fail the check below, not block the start.
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK));
    if (!fd) return sys_error(fmt::format("opening {} {}", key, path));
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return sys_error(fmt::format("inspecting {} {}", key, path));
    if (!S_ISREG(st.st_mode)) return logic_error(fmt::format("{} {} is not a regular file", key, path));
    if (st.st_uid != 0)
        return logic_error(fmt::format("{} {} belongs to uid {}; it must belong to root", key, path, st.st_uid));
    if ((st.st_mode & 077) != 0)
        return logic_error(fmt::format("{} {} may be read by group or others (mode {:04o}); make it "
                                       "0600 (chmod 600 {})",
                                       key, path, st.st_mode & 07777, path));
    std::string text(kMaxCredentialsBytes + 2, '\0');
    std::size_t have = 0;
    while (have < text.size()) {
        const ssize_t n = ::read(fd.get(), text.data() + have, text.size() - have);
        if (n < 0) {
            if (errno == EINTR) continue;
            return sys_error(fmt::format("reading {} {}", key, path));
        }
        if (n == 0) break;
        have += static_cast<std::size_t>(n);
    }
    text.resize(have);
    if (text.ends_with('\n')) text.pop_back();
    if (text.ends_with('\r')) text.pop_back();
    if (text.size() > kMaxCredentialsBytes)
        return logic_error(fmt::format("{} {}: expected one line of at most {} bytes", key, path,
                                       kMaxCredentialsBytes));
    if (std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
        return logic_error(fmt::format("{} {}: expected one line \"user:password\" (it has more lines "
                                       "or control characters)",
                                       key, path));
    if (text.find(':') == std::string::npos || text.front() == ':')
        return logic_error(fmt::format("{} {}: expected \"user:password\"", key, path));
    return text;
}

}  // namespace cfs::supervisor
