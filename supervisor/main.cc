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
#include "supervisor/supervisor.h"
#include "supervisor/worker_process.h"

namespace {

using namespace cfs;

constexpr const char* kDefaultConfigPath = "/etc/cfsupervisor/cfsupervisor.toml";

void usage(std::FILE* to) {
    std::fprintf(to,
                 "usage: cfsupervisor run [--config FILE]   serve /dev/cachefiles (default config %s)\n"
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
    auto device = supervisor::bind_cache(config->cache_dir, config->cache_tag);
    if (!device) {
        log::error("{}", device.error().message());
        return EXIT_FAILURE;
    }
    log::info("bound {} to cache {} (tag {}) in on-demand mode", supervisor::kDevicePath, config->cache_dir,
              config->cache_tag);
    supervisor::Supervisor supervisor(*config, std::move(*device), std::move(blob_dir), std::move(*worker));
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
    usage(stderr);
    return EXIT_FAILURE;
}
