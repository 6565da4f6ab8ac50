// cfsupervisor: the privileged daemon and its command line.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/config.h"
#include "common/log.h"
#include "supervisor/cache_device.h"
#include "supervisor/check_policy.h"
#include "supervisor/fd_store.h"
#include "supervisor/supervisor.h"
#include "supervisor/worker_process.h"
#include "supervisor/worker_user.h"

namespace {

using namespace cfs;

constexpr const char* kDefaultConfigPath = "/etc/cfsupervisor/cfsupervisor.toml";

void usage(std::FILE* to) {
    std::fprintf(to,
                 "usage: cfsupervisor run [--config FILE]   serve /dev/cachefiles (default config %s)\n"
                 "       cfsupervisor check-policy [--config FILE] [--policy FILE]\n"
                 "                                            print the workers' sandbox; with --policy, check\n"
                 "                                            an edited copy of policy/worker.seccomp instead\n"
                 "       cfsupervisor --version\n",
                 kDefaultConfigPath);
}

int run(const std::string& config_path) {
    auto config = load_config(config_path);
    if (!config) {
        // One line, as systemd and operators read it.
        log::error("{}", config.error().message());
        return kExitConfig;
    }
    log::set_level(config->log_level);
    // Checked now so that a missing user stops the start (every worker start looks
    // it up again).
    if (auto user = supervisor::resolve_worker_user(config->worker_user); !user) {
        log::error("{}", user.error().message());
        return kExitConfig;
    }

    unique_fd blob_dir(::open(config->blob_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!blob_dir) {
        log::error("{}: blobs.dir {}", sys_error("cannot open the blob directory").message(), config->blob_dir);
        return EXIT_FAILURE;
    }
    auto worker = supervisor::open_worker_executable();
    if (!worker) {
        log::error("{}", worker.error().message());
        return EXIT_FAILURE;
    }
    auto stored = supervisor::take_stored_device();
    if (!stored) {
        log::error("{}", stored.error().message());
        return EXIT_FAILURE;
    }
    const bool from_store = stored->has_value();
    unique_fd device;
    if (from_store) {
        // Binding again would fail (EBUSY) and is not needed: the cache never went away.
        device = std::move(**stored);
        log::info("took {} from systemd's fd store: the cache stayed bound across the restart "
                  "(changes to cache.dir or cache.tag apply after a stop and start)",
                  supervisor::kDevicePath);
    } else {
        auto bound = supervisor::bind_cache(config->cache_dir, config->cache_tag);
        if (!bound) {
            log::error("{}", bound.error().message());
            return EXIT_FAILURE;
        }
        device = std::move(*bound);
        log::info("bound {} to cache {} (tag {}) in on-demand mode", supervisor::kDevicePath, config->cache_dir,
                  config->cache_tag);
    }
    auto outcome = supervisor::store_device(device.get());
    if (!outcome)
        log::warning("{}; a restart of the supervisor will fail requests in flight", outcome.error().message());
    else if (*outcome == supervisor::StoreOutcome::no_systemd)
        log::warning("not started by systemd (no NOTIFY_SOCKET): requests in flight cannot survive a restart of "
                     "the supervisor itself; worker crashes are still recovered");
    else if (!from_store)
        log::info("device fd handed to systemd's fd store (kept if the unit sets FileDescriptorStoreMax=)");
    supervisor::Supervisor supervisor(*config, std::move(device), std::move(blob_dir), std::move(*worker), from_store);
    return supervisor.run();
}

}  // namespace

int main(int argc, char** argv) {
    log::set_identity("cfsupervisor");
    const std::string_view command = argc > 1 ? argv[1] : "";
    if (command == "--version") {
        std::printf("cfsupervisor %s\n", CFS_VERSION);
        return EXIT_SUCCESS;
    }
    if (command == "--help" || command == "help") {
        usage(stdout);
        return EXIT_SUCCESS;
    }
    if (command == "run") {
        std::string config_path = kDefaultConfigPath;
        for (int i = 2; i < argc; ++i) {
            const std::string_view arg = argv[i];
            if (arg == "--config" && i + 1 < argc) {
                config_path = argv[++i];
            } else {
                log::error("run: unexpected argument '{}'", arg);
                usage(stderr);
                return EXIT_FAILURE;
            }
        }
        return run(config_path);
    }
    if (command == "check-policy") {
        supervisor::CheckPolicyOptions options{kDefaultConfigPath, false, {}};
        for (int i = 2; i < argc; ++i) {
            const std::string_view arg = argv[i];
            if (arg == "--config" && i + 1 < argc) {
                options.config_path = argv[++i];
                options.config_given = true;
            } else if (arg == "--policy" && i + 1 < argc) {
                options.policy_path = argv[++i];
            } else {
                log::error("check-policy: unexpected argument '{}'", arg);
                usage(stderr);
                return EXIT_FAILURE;
            }
        }
        return supervisor::check_policy(options);
    }
    usage(stderr);
    return EXIT_FAILURE;
}
