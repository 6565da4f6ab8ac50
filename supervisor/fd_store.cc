#include "supervisor/fd_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
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
        if (name == kBindingFdName && !passed.binding) {
            std::string text(4 * 4096, '\0');
            const ssize_t got = ::pread(fd.get(), text.data(), text.size(), 0);
            text.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
            passed.binding = parse_binding(text);
            if (!passed.binding) log::warning("the fd store's \"{}\" does not say how the cache was bound; ignored",
                                              kBindingFdName);
            continue;
        }
        log::warning("closing fd {} that systemd passed under the name \"{}\": not ours", fd.get(), name);
    }
    return passed;
}

std::string binding_text(const CacheBinding& binding) {
    std::string text = fmt::format("cfs-binding 1\ndir {}\ntag {}\n", binding.dir, binding.tag);
    if (binding.refuse_below_percent) text += fmt::format("refuse_below {}\n", *binding.refuse_below_percent);
    return text;
}

std::optional<CacheBinding> parse_binding(std::string_view text) {
    // The config refuses newlines in both values, so a line each holds them.
    constexpr std::string_view head = "cfs-binding 1\n";
    if (!text.starts_with(head) || !text.ends_with('\n')) return std::nullopt;
    text.remove_prefix(head.size());
    // The value of the next line if it is "<key> <value>".
    auto line = [&text](std::string_view key) -> std::optional<std::string_view> {
        if (!text.starts_with(key) || text.size() <= key.size() || text[key.size()] != ' ') return std::nullopt;
        const std::size_t end = text.find('\n');
        const std::string_view value = text.substr(key.size() + 1, end - key.size() - 1);
        text.remove_prefix(end + 1);
        return value;
    };
    const auto dir = line("dir");
    const auto tag = line("tag");
    if (!dir || !tag || dir->empty() || dir->front() != '/' || tag->empty()) return std::nullopt;
    CacheBinding b{std::string(*dir), std::string(*tag), std::nullopt};
    if (const auto refuse = line("refuse_below")) {
        // Two digits at most, as binding_text writes them (the config allows 1 to 99).
        unsigned percent = 0;
        const char* end = refuse->data() + refuse->size();
        const auto parsed = std::from_chars(refuse->data(), end, percent);
        if (refuse->size() > 2 || parsed.ec != std::errc{} || parsed.ptr != end) return std::nullopt;
        b.refuse_below_percent = percent;
    }
    if (!text.empty()) return std::nullopt;
    return b;
}

Status store_binding(const CacheBinding& binding) {
    unique_fd memfd(::memfd_create("cfsupervisor-binding", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!memfd) return sys_error("creating the memfd for the cache's binding");
    const std::string text = binding_text(binding);
    if (::write(memfd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return sys_error("writing the cache's binding into its memfd");
    if (::fcntl(memfd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
        return sys_error("sealing the cache's binding");
    int fd = memfd.get();
    const int sent = sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=binding", &fd, 1);
    if (sent < 0) return sys_error(-sent, "handing the cache's binding to systemd's fd store");
    return {};
}

Result<StoreOutcome> store_device(int device) {
    const int sent = sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=cachefiles\nFDPOLL=0", &device, 1);
    if (sent < 0) return sys_error(-sent, "handing the device fd to systemd's fd store");
    return sent == 0 ? StoreOutcome::no_systemd : StoreOutcome::stored;
}

}  // namespace cfs::supervisor
