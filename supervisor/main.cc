// cfsupervisor: the privileged daemon and its command line.
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <cstring>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <fmt/ranges.h>
#include <systemd/sd-daemon.h>

#include "common/config.h"
#include "common/log.h"
#include "common/control_protocol.h"
#include "common/worker_protocol.h"
#include "supervisor/blob_stores.h"
#include "supervisor/cache_device.h"
#include "supervisor/control_server.h"
#include "supervisor/check_policy.h"
#include "supervisor/fd_store.h"
#include "supervisor/hold_device.h"
#include "supervisor/journal_log.h"
#include "supervisor/supervisor.h"
#include "supervisor/worker_process.h"
#include "supervisor/worker_user.h"

namespace {

using namespace cfs;

// /etc/cfsupervisor/cfsupervisor.toml for the default prefix /usr (CMakeLists.txt).
constexpr const char* kDefaultConfigPath = CFS_DEFAULT_CONFIG_PATH;

void usage(std::FILE* to) {
    std::fprintf(to,
                 "usage: cfsupervisor run [--config FILE]   serve /dev/cachefiles (default config %s)\n"
                 "       cfsupervisor check-policy [--config FILE] [--policy FILE]\n"
                 "                                            print the workers' sandbox; with --policy, check\n"
                 "                                            an edited copy of policy/worker.seccomp instead\n"
                 "       cfsupervisor status [--json] [--socket PATH]\n"
                 "                                            what the running daemon is doing\n"
                 "       cfsupervisor restart-workers [--socket PATH]\n"
                 "                                            replace every worker, one at a time, with the worker\n"
                 "                                            executable as installed now (after an upgrade); no\n"
                 "                                            reader sees an error; returns when done (root only)\n"
                 "       cfsupervisor reload [--socket PATH]\n"
                 "                                            read the config file again and apply what can change\n"
                 "                                            while running (also SIGHUP, `systemctl reload`); a bad\n"
                 "                                            or refused config changes nothing (root only)\n"
                 "       cfsupervisor --version\n"
                 "\n"
                 "status, restart-workers and reload exit 0 on success, 1 when the daemon refused or failed\n"
                 "(the reason is on stderr), 3 when the daemon is not running, 4 on permission denied.\n",
                 kDefaultConfigPath);
}

// What a start needs before it touches the device; each step can fail on what the
// operator wrote or on the machine as it is now.
struct Prepared {
    Config config;
    std::optional<gid_t> control_group;
    std::vector<supervisor::PreparedStore> blob_stores;
    unique_fd worker;
};
struct NotPrepared {
    std::string why;
    int exit_status;
};

std::variant<Prepared, NotPrepared> prepare(const std::string& config_path) {
    auto config = load_config(config_path);
    if (!config) return NotPrepared{config.error().message(), kExitConfig};
    log::set_level(config->log_level);
    // Checked now so that a missing user stops the start (every worker start looks
    // it up again).
    if (auto user = supervisor::resolve_worker_user(config->worker_user); !user)
        return NotPrepared{user.error().message(), kExitConfig};
    auto control_group = supervisor::ControlServer::resolve_group(config->control_group);
    if (!control_group) return NotPrepared{control_group.error().message(), kExitConfig};
    auto stores = supervisor::prepare_blob_stores(*config);
    if (auto* fault = std::get_if<supervisor::StoreFault>(&stores))
        return NotPrepared{fault->error.message(), fault->exit_status};
    auto worker = supervisor::open_worker_executable();
    if (!worker) return NotPrepared{worker.error().message(), EXIT_FAILURE};
    return Prepared{std::move(*config), *control_group,
                    std::move(std::get<std::vector<supervisor::PreparedStore>>(stores)), std::move(*worker)};
}

int run(const std::string& config_path) {
    // Blocked before the first step that can take long (the config's DNS lookups, a
    // slow NSS): left at its default, a SIGHUP (`systemctl reload`) arriving while
    // starting would end the process, which systemd counts as a clean exit and does
    // not restart, dropping the fd store's device. Pending, it is read by the event
    // loop's (or hold_device's) signalfd as a reload, SIGTERM as a stop.
    sigset_t stop_and_reload;
    ::sigemptyset(&stop_and_reload);
    for (int s : {SIGTERM, SIGINT, SIGHUP}) ::sigaddset(&stop_and_reload, s);
    ::sigprocmask(SIG_BLOCK, &stop_and_reload, nullptr);
    // Under systemd, lines are journal entries with fields from here on.
    (void)supervisor::log_to_journal_if_under_systemd();
    // Taken before anything can fail: with the device from the fd store, a start that
    // cannot go on holds it rather than exit and lose the cache (hold_device.h).
    auto passed = supervisor::take_passed_fds();
    if (!passed) {
        log::error("{}", passed.error().message());
        return EXIT_FAILURE;
    }
    std::optional<supervisor::ControlServer> control;
    // Root's `reload` while holding the device waits for the start it asked for.
    std::optional<supervisor::ControlServer::ClientId> reload_client;
    auto answer_reload = [&](control::Code code, std::string text) {
        if (control && reload_client) control->answer(*reload_client, supervisor::ControlReply{code, std::move(text)});
        reload_client.reset();
    };
    auto prepared = prepare(config_path);
    while (auto* failed = std::get_if<NotPrepared>(&prepared)) {
        // One line, as systemd and operators read it.
        log::error("{}", failed->why);
        answer_reload(control::Code::failed, fmt::format("still cannot start: {}\n", failed->why));
        if (!passed->device) return failed->exit_status;
        if (!control) {
            // Root only while the config that names the control group cannot be read.
            auto held = passed->control ? supervisor::ControlServer::adopt(std::move(*passed->control), std::nullopt)
                                        : supervisor::ControlServer::create(control::kDefaultSocketPath, std::nullopt);
            passed->control.reset();
            if (held) control = std::move(*held);
        }
        const auto held = supervisor::hold_device(failed->why, control ? &*control : nullptr);
        if (held.what == supervisor::HoldOutcome::stop) return EXIT_SUCCESS;
        reload_client = held.reload_client;
        // hold_device told systemd the unit is up, which arms its watchdog; a retry
        // (DNS lookups, NSS) gets the whole interval.
        (void)sd_notify(0, "WATCHDOG=1");
        prepared = prepare(config_path);
    }
    answer_reload(control::Code::ok, "the config is valid again: starting to serve\n");
    Prepared& p = std::get<Prepared>(prepared);
    for (const std::string& line : supervisor::describe_blob_stores(p.blob_stores)) log::info("{}", line);
    const bool from_store = passed->device.has_value();
    unique_fd device;
    if (from_store) {
        // Binding again would fail (EBUSY) and is not needed: the cache never went away.
        device = std::move(*passed->device);
        log::info("took {} from systemd's fd store: the cache stayed bound across the restart "
                  "(changes to cache.dir, cache.tag or cache.refuse_below_percent apply after a stop and start)",
                  supervisor::kDevicePath);
    } else {
        auto bound = supervisor::bind_cache(p.config.cache_dir, p.config.cache_tag, p.config.cull_limits);
        if (!bound) {
            log::error("{}", bound.error().message());
            return EXIT_FAILURE;
        }
        device = std::move(*bound);
        log::info("bound {} to cache {} (tag {}) in on-demand mode", supervisor::kDevicePath, p.config.cache_dir,
                  p.config.cache_tag);
    }
    auto outcome = supervisor::store_device(device.get());
    if (!outcome)
        log::warning("{}; a restart of the supervisor will fail requests in flight", outcome.error().message());
    else if (*outcome == supervisor::StoreOutcome::no_systemd)
        log::warning("not started by systemd (no NOTIFY_SOCKET): requests in flight cannot survive a restart of "
                     "the supervisor itself; worker crashes are still recovered");
    else if (!from_store) {
        log::info("device fd handed to systemd's fd store (kept if the unit sets FileDescriptorStoreMax=)");
        if (auto kept = supervisor::store_binding(
                {p.config.cache_dir, p.config.cache_tag, p.config.cull_limits.stop});
            !kept)
            log::warning("{}; after a restart, status shows the configured cache.dir and cache.tag, which may "
                         "not be the ones the kernel uses",
                         kept.error().message());
    }
    // What the kernel uses: the device from the store keeps the binding of the start
    // that made it, whatever the config says now.
    supervisor::CacheBinding bound{p.config.cache_dir, p.config.cache_tag, p.config.cull_limits.stop};
    if (from_store && passed->binding) {
        bound = *passed->binding;
        if (bound.dir != p.config.cache_dir || bound.tag != p.config.cache_tag)
            log::warning("the cache stays bound to {} (tag {}) as when it was first started; the config now says "
                         "{} (tag {}), which applies once the unit is stopped and started again (a stop ends "
                         "the cache: unmount its images first)",
                         bound.dir, bound.tag, p.config.cache_dir, p.config.cache_tag);
        if (bound.refuse_below_percent && *bound.refuse_below_percent != p.config.cull_limits.stop)
            log::warning("cachefiles refuses cache writes below {}% free, as when the cache was bound; the config "
                         "now says cache.refuse_below_percent = {}, which applies once the unit is stopped and "
                         "started again",
                         *bound.refuse_below_percent, p.config.cull_limits.stop);
    } else if (from_store) {
        bound.refuse_below_percent.reset();  // the kernel's is whatever that start gave it
    }
    supervisor::Supervisor supervisor(p.config, std::move(device), std::move(p.blob_stores), std::move(p.worker),
                                      from_store);
    supervisor.set_fd_store(outcome && *outcome == supervisor::StoreOutcome::stored);
    supervisor.set_bound_cache(std::move(bound));
    supervisor.set_config_path(config_path);
    // Without the control socket the daemon still serves; only `status` is lost.
    if (control) {
        // The one served while holding the device: now for the configured group too.
        if (auto set = control->set_group(p.control_group); !set) log::warning("{}", set.error().message());
        supervisor.set_control(std::move(*control));
    } else {
        auto created = passed->control
                           ? supervisor::ControlServer::adopt(std::move(*passed->control), p.control_group)
                           : supervisor::ControlServer::create(control::kDefaultSocketPath, p.control_group);
        if (created)
            supervisor.set_control(std::move(*created));
        else
            log::warning("no control socket, so `cfsupervisor status` cannot answer: {}", created.error().message());
    }
    return supervisor.run();
}

}  // namespace

// `cfsupervisor status` and other commands: one request over the control socket.
// Exit status 3 when the daemon is not running, as `systemctl status` does.
// `timeout_s` 0: wait as long as the daemon takes (restart-workers answers when done;
// the daemon always answers or closes the connection).
int ask(std::string_view request, const std::string& socket_path, int timeout_s = 10) {
    unique_fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (!fd || socket_path.size() >= sizeof addr.sun_path) {
        std::fprintf(stderr, "cfsupervisor: cannot use the control socket %s\n", socket_path.c_str());
        return EXIT_FAILURE;
    }
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0) {
        const int err = errno;
        if (err == ENOENT || err == ECONNREFUSED) {
            std::fprintf(stderr, "cfsupervisor is not running (no one listens on %s)\n", socket_path.c_str());
            return 3;
        }
        if (err == EACCES) {
            std::fprintf(stderr, "permission denied: only root and members of the control group may ask the "
                                 "supervisor (%s)\n", socket_path.c_str());
            return 4;
        }
        std::fprintf(stderr, "cfsupervisor: connecting to %s: %s\n", socket_path.c_str(), std::strerror(err));
        return EXIT_FAILURE;
    }
    const timeval timeout{timeout_s, 0};
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) < 0) {
        std::fprintf(stderr, "cfsupervisor: sending to %s: %s\n", socket_path.c_str(), std::strerror(errno));
        return EXIT_FAILURE;
    }
    std::string reply(control::kMaxResponse, '\0');
    const ssize_t n = ::recv(fd.get(), reply.data(), reply.size(), 0);
    if (n <= 0) {
        std::fprintf(stderr, "cfsupervisor: no answer from %s: %s\n", socket_path.c_str(),
                     n == 0 ? "connection closed" : std::strerror(errno));
        return EXIT_FAILURE;
    }
    reply.resize(static_cast<std::size_t>(n));
    const auto newline = reply.find('\n');
    const int code = newline == std::string::npos ? 1 : std::atoi(reply.substr(0, newline).c_str());
    const std::string text = newline == std::string::npos ? reply : reply.substr(newline + 1);
    std::fputs(text.c_str(), code == 0 ? stdout : stderr);
    // Unknown commands (2: an older daemon than this CLI) fail like any refusal.
    return code == static_cast<int>(control::Code::unknown_command) ? EXIT_FAILURE : code;
}

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
    if (command == "status") {
        std::string request = "status", socket_path = control::kDefaultSocketPath;
        for (int i = 2; i < argc; ++i) {
            const std::string_view arg = argv[i];
            if (arg == "--json") {
                request = "status --json";
            } else if (arg == "--socket" && i + 1 < argc) {
                socket_path = argv[++i];
            } else {
                std::fprintf(stderr, "status: unexpected argument '%s'\n", argv[i]);
                usage(stderr);
                return EXIT_FAILURE;
            }
        }
        return ask(request, socket_path);
    }
    if (command == "restart-workers" || command == "reload") {
        std::string socket_path = control::kDefaultSocketPath;
        for (int i = 2; i < argc; ++i) {
            const std::string_view arg = argv[i];
            if (arg == "--socket" && i + 1 < argc) {
                socket_path = argv[++i];
            } else {
                std::fprintf(stderr, "%s: unexpected argument '%s'\n", argv[1], argv[i]);
                usage(stderr);
                return EXIT_FAILURE;
            }
        }
        return ask(command, socket_path, command == "restart-workers" ? 0 : 30);
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
        return supervisor::check_policy(options, stdout);
    }
    usage(stderr);
    return EXIT_FAILURE;
}
