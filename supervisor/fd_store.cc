#include "supervisor/fd_store.h"

#include <sys/stat.h>

#include <cstdlib>
#include <memory>
#include <string_view>

#include <fmt/format.h>
#include <systemd/sd-daemon.h>

#include "common/control_protocol.h"
#include "common/log.h"
#include "supervisor/cache_device.h"

namespace cfs::supervisor {
namespace {

struct NamesDeleter {
    void operator()(char** names) const {
        for (char** n = names; *n != nullptr; ++n) std::free(*n);
        std::free(static_cast<void*>(names));
    }
};

Status check_is_device(int fd) {
    struct stat passed {}, node {};
    if (::fstat(fd, &passed) < 0) return sys_error("inspecting the stored device fd");
    if (::stat(kDevicePath, &node) < 0) return sys_error(fmt::format("inspecting {}", kDevicePath));
    if (!S_ISCHR(passed.st_mode) || passed.st_rdev != node.st_rdev)
        return logic_error(fmt::format("the fd stored as \"{}\" is not {}", kDeviceFdName, kDevicePath));
    return {};
}

}  // namespace

Result<PassedFds> take_passed_fds() {
    char** raw_names = nullptr;
    const int n = sd_listen_fds_with_names(1, &raw_names);
    if (n < 0) return sys_error(-n, "reading the fds systemd passed");
    std::unique_ptr<char*, NamesDeleter> names(raw_names);
    PassedFds passed;
    for (int i = 0; i < n; ++i) {
        unique_fd fd(SD_LISTEN_FDS_START + i);
        const std::string_view name = names ? names.get()[i] : "";
        if (name == kDeviceFdName && !passed.device) {
            if (auto ok = check_is_device(fd.get()); !ok) return std::move(ok).error();
            passed.device = std::move(fd);
            continue;
        }
        if (name == control::kListenFdName && !passed.control) {
            passed.control = std::move(fd);
            continue;
        }
        log::warning("closing fd {} that systemd passed under the name \"{}\": not ours", fd.get(), name);
    }
    return passed;
}

Result<StoreOutcome> store_device(int device) {
    const int sent = sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=cachefiles\nFDPOLL=0", &device, 1);
    if (sent < 0) return sys_error(-sent, "handing the device fd to systemd's fd store");
    return sent == 0 ? StoreOutcome::no_systemd : StoreOutcome::stored;
}

}  // namespace cfs::supervisor
