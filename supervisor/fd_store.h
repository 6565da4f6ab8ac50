// systemd's file descriptor store: how a bound cache outlives the supervisor (the
// seed in shared/seed/). The kernel tears the cache down when the last copy of the
// device fd closes; a copy parked in systemd keeps it, and the next instance gets it
// back in LISTEN_FDS under the name "cachefiles".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"

namespace cfs::supervisor {

inline constexpr const char* kDeviceFdName = "cachefiles";
// A sealed memfd stored beside the device: the cache.dir, cache.tag and
// cache.refuse_below_percent it was bound with (the kernel turns the percentages into
// block and file counts at bind). A restarted supervisor takes the device as it is,
// whatever its config says now, and reports what the kernel really uses.
inline constexpr const char* kBindingFdName = "binding";

struct CacheBinding {
    std::string dir;
    std::string tag;
    // Unknown in a binding stored by a version before it was recorded.
    std::optional<unsigned> refuse_below_percent;
    bool operator==(const CacheBinding&) const = default;
};

struct PassedFds {
    std::optional<unique_fd> device;   // from the fd store: "cachefiles"
    std::optional<unique_fd> control;  // socket activation: "control" (cfsupervisor.socket)
    std::optional<CacheBinding> binding;  // from the fd store: "binding"
};

// The binding's text in its memfd, and back; nullopt for anything else.
[[nodiscard]] std::string binding_text(const CacheBinding& binding);
[[nodiscard]] std::optional<CacheBinding> parse_binding(std::string_view text);

// Takes the fds systemd passed (sd_listen_fds_with_names; the environment is
// cleared so workers never see it). A device must really be /dev/cachefiles. Passed
// fds with other names are closed and logged.
[[nodiscard]] Result<PassedFds> take_passed_fds();

enum class StoreOutcome { stored, no_systemd };
// Parks a copy of the bound device in the store (FDSTORE=1, FDNAME=cachefiles,
// FDPOLL=0: the device's poll flags are its own, and systemd would drop an fd that
// reports POLLHUP). Storing the same fd again is harmless: systemd keeps one copy.
[[nodiscard]] Result<StoreOutcome> store_device(int device);
// Parks the binding the device was just bound with (kBindingFdName).
[[nodiscard]] Status store_binding(const CacheBinding& binding);

}  // namespace cfs::supervisor
