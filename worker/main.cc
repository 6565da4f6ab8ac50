// cfsupervisor-worker: started by the supervisor only, as root. Everything it needs
// (the device fd, the blob directory) arrives over its socket in Init; it reads no
// config, and enters its sandbox (worker/sandbox.h: its own namespaces and empty
// root, the unprivileged user the supervisor names, Landlock, seccomp) before it
// reads any request.
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <poll.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "common/fault_point.h"
#include "common/fd_passing.h"
#include "common/kernel_msg.h"
#include "common/log.h"
#include "common/seccomp_policy.h"
#include "common/unique_fd.h"
#include "common/worker_protocol.h"
#include "worker/kernel_io.h"
#include "worker/request_handler.h"
#include "worker/request_stats.h"
#include "worker/sandbox.h"
#include "worker/store_backends.h"
#include "worker/supervisor_link.h"
#ifdef CFS_FAULT_INJECTION
#include "tests/vm/tools/hostile_script.h"
#endif

namespace {

using namespace cfs;

constexpr int kInitTimeoutMs = 10'000;
constexpr const char* kWorkerComm = "cfs-worker";
// Requests handled per wakeup before the supervisor socket gets a turn.
constexpr int kRequestsPerWakeup = 64;

struct Options {
    int ipc_fd = 3;
    pid_t parent = 0;
    worker::SandboxUser user;  // the user the sandbox switches to
};

template <class T>
bool parse_number(std::string_view s, T& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

bool parse_options(int argc, char** argv, Options& o) {
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view key = argv[i], value = argv[i + 1];
        bool ok = false;
        if (key == "--ipc-fd") ok = parse_number(value, o.ipc_fd);
        else if (key == "--parent-pid") ok = parse_number(value, o.parent);
        else if (key == "--uid") ok = parse_number(value, o.user.uid);
        else if (key == "--gid") ok = parse_number(value, o.user.gid);
        if (!ok) return false;
    }
    return argc % 2 == 1 && o.parent > 0 && o.user.uid > 0 && o.user.gid > 0;
}

struct ReceivedStore {
    wire::BlobStore store;
    unique_fd dir;  // empty: the store has none
};

struct InitReceived {
    wire::Init init;
    unique_fd device;
    unique_fd stats_page;
    std::vector<ReceivedStore> stores;  // store 0 ([blobs]) first
};

struct Received {
    wire::Message message;
    std::vector<unique_fd> fds;
};

Result<Received> receive_one(int sock) {
    pollfd p{sock, POLLIN, 0};
    if (::poll(&p, 1, kInitTimeoutMs) <= 0) return logic_error("the supervisor sent nothing more");
    std::array<std::byte, wire::kMaxMessageSize> buffer;
    auto received = receive_message(sock, buffer, kMaxFdsPerMessage);
    if (!received) return std::move(received).error();
    if (received->size == 0) return logic_error("the supervisor closed the connection");
    auto m = wire::decode(std::span(buffer).first(received->size), received->fds.size());
    if (!m) return std::move(m).error();
    return Received{std::move(*m), std::move(received->fds)};
}

// Init, then its blob stores in order (common/worker_protocol.h).
Result<InitReceived> receive_init(int sock) {
    auto first = receive_one(sock);
    if (!first) return std::move(first).error();
    auto* init = std::get_if<wire::Init>(&first->message);
    if (init == nullptr) return logic_error("first message from the supervisor is not Init");
    if (init->blob_stores == 0 || init->blob_stores > wire::kMaxBlobStores)
        return logic_error(fmt::format("Init announces {} blob stores, expected 1 to {}", init->blob_stores,
                                       wire::kMaxBlobStores));
    InitReceived out{*init, std::move(first->fds[0]), std::move(first->fds[1]), {}};
    for (std::uint32_t i = 0; i < out.init.blob_stores; ++i) {
        auto next = receive_one(sock);
        if (!next) return std::move(next).error();
        auto* store = std::get_if<wire::BlobStore>(&next->message);
        if (store == nullptr || store->store != i)
            return logic_error(fmt::format("expected BlobStore {} from the supervisor", i));
        // Store 0 is [blobs], which always has a directory; the others are volumes.
        if (store->volume.empty() != (i == 0) || (i == 0 && !store->has_dir) ||
            (!store->has_dir && store->url.empty()))
            return logic_error(fmt::format("BlobStore {} from the supervisor is not a store", i));
        ReceivedStore received{std::move(*store), {}};
        if (received.store.has_dir) {
            auto dir = receive_one(sock);
            if (!dir) return std::move(dir).error();
            auto* d = std::get_if<wire::BlobStoreDir>(&dir->message);
            if (d == nullptr || d->store != i)
                return logic_error(fmt::format("expected BlobStoreDir {} from the supervisor", i));
            received.dir = std::move(dir->fds[0]);
        }
        out.stores.push_back(std::move(received));
    }
    return out;
}

// `after_ready`: test builds' hostile mode, which attacks as a worker the supervisor
// already accepted (most checks apply only after Ready).
int serve(int sock, InitReceived init, worker::StoreBackends& stores, worker::RequestStats stats,
          worker::AlignedBytes copy_buffer, const std::function<void()>& after_ready) {
    worker::DeviceKernelIo kernel(std::move(init.device));
    worker::RequestHandler* handler_ptr = nullptr;
    worker::SocketSupervisorLink link(
        sock, [&handler_ptr](std::uint32_t id) { handler_ptr->forget(id); },
        [&handler_ptr](worker::SharedObject object) { handler_ptr->take_shared(std::move(object)); });
    worker::RequestHandler handler(kernel, stores.router(), link, std::uint64_t{init.init.read_ahead_kib} * 1024,
                                   std::move(copy_buffer));
    handler_ptr = &handler;

    unique_fd epoll(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll) {
        log::error("{}", sys_error("creating the event loop").message());
        return EXIT_FAILURE;
    }
    const int device = kernel.device_fd();
    // A worker starts paused (common/worker_protocol.h): the device is watched only
    // between a Resume and the next Pause.
    auto watch = [&epoll](int fd, int op, std::uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        return ::epoll_ctl(epoll.get(), op, fd, &ev) == 0;
    };
    if (!watch(device, EPOLL_CTL_ADD, 0) || !watch(sock, EPOLL_CTL_ADD, EPOLLIN)) {
        log::error("{}", sys_error("watching the device and the supervisor socket").message());
        return EXIT_FAILURE;
    }
    if (auto ready = link.send(wire::Ready{}); !ready) {
        log::error("{}", ready.error().message());
        return EXIT_FAILURE;
    }
    if (after_ready) after_ready();

    bool serving = false;
    bool first_since_resume = false;
    // Runs between requests only, so a Paused never leaves one half answered.
    auto apply_control = [&]() -> Status {
        while (auto control = link.next_control()) {
            const bool pause = *control == worker::SocketSupervisorLink::Control::pause;
#ifdef CFS_FAULT_INJECTION
            if (pause && testing::hostile_ignores_pause()) {
                log::warning("hostile: ignoring Pause, holding on to whatever I hold");
                for (;;) (void)::poll(nullptr, 0, -1);
            }
#endif
            if (pause != serving) return logic_error(pause ? "Pause while paused" : "Resume while serving");
            serving = !pause;
            handler.set_paused(pause);
            if (!watch(device, EPOLL_CTL_MOD, serving ? std::uint32_t{EPOLLIN} : 0U)) return sys_error("watching the device");
            if (pause) {
                if (auto sent = link.send(wire::Paused{}); !sent) return sent;
                log::debug("paused");
            } else {
                first_since_resume = true;
                log::debug("serving");
            }
        }
        return {};
    };

    std::array<std::byte, kmsg::kMaxMessageSize> message;
    for (;;) {
        std::array<epoll_event, 4> events;
        // Read-ahead is written only while nothing else waits: requests and the
        // supervisor's messages first.
        const bool ahead = serving && handler.has_ahead_work();
        int n = ::epoll_wait(epoll.get(), events.data(), events.size(), ahead ? 0 : -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            log::error("{}", sys_error("waiting for requests").message());
            return EXIT_FAILURE;
        }
        if (n == 0 && ahead) {
            handler.write_ahead_step();
            stats.written(handler.counters().bytes_written);
        }
        for (int i = 0; i < n; ++i) {
            if (events[i].data.fd == sock) {
                if (auto drained = link.drain_unsolicited(); !drained) {
                    // The supervisor going away is how a worker is told to stop.
                    log::info("leaving: {}", drained.error().message());
                    return EXIT_SUCCESS;
                }
                continue;
            }
            for (int k = 0; k < kRequestsPerWakeup && serving && !link.control_pending(); ++k) {
                auto got = kernel.read_request(message);
                if (!got) {
                    // EEXIST and friends fail one request inside the kernel; the
                    // device itself is still fine.
                    log::warning("{}", got.error().message());
                    break;
                }
                if (*got == 0) break;
                stats.begin(std::span(message).first(*got));
                if (auto handled = handler.handle(std::span(message).first(*got)); !handled) {
                    log::error("lost the supervisor: {}", handled.error().message());
                    return EXIT_FAILURE;
                }
                stats.end(handler.counters().bytes_written);
                // Progress means data served: a READ answered. A worker that answers
                // OPENs (which every failover brings again) but crashes on READs is
                // crash-looping, and must not be forgiven for the OPENs.
                const auto header = kmsg::peek_header(std::span(message).first(*got));
                const bool was_read = header && header->opcode == static_cast<std::uint32_t>(kmsg::Opcode::read);
                if (first_since_resume && was_read) {
                    first_since_resume = false;
                    if (auto sent = link.send(wire::Progress{worker::monotonic_ns()}); !sent) {
                        log::error("lost the supervisor: {}", sent.error().message());
                        return EXIT_FAILURE;
                    }
                }
            }
        }
        if (auto applied = apply_control(); !applied) {
            log::error("{}", applied.error().message());
            return EXIT_FAILURE;
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    log::set_identity("cfsupervisor-worker");
    Options options;
    if (!parse_options(argc, argv, options)) {
        log::error("usage: cfsupervisor-worker --ipc-fd N --parent-pid PID --uid UID --gid GID "
                   "(started by cfsupervisor only)");
        return EXIT_FAILURE;
    }
    // A worker never outlives its supervisor; the check after the prctl catches a
    // supervisor that died before it took effect.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || ::getppid() != options.parent) return EXIT_FAILURE;
    // Started through execveat(fd), a worker's comm would be the fd's number; give
    // ps, top and the journal (_COMM) a name.
    (void)::prctl(PR_SET_NAME, kWorkerComm);
    // A worker's memory holds nothing worth a core file, and a crash loop must not
    // fill a disk with them.
    const rlimit no_core{0, 0};
    (void)::setrlimit(RLIMIT_CORE, &no_core);
    ::signal(SIGPIPE, SIG_IGN);

    const int sock = options.ipc_fd;
    if (::fcntl(sock, F_SETFD, FD_CLOEXEC) < 0) {
        log::error("{}", sys_error("using the supervisor socket").message());
        return EXIT_FAILURE;
    }
    auto init = receive_init(sock);
    if (!init) {
        log::error("cannot start: {}", init.error().message());
        return EXIT_FAILURE;
    }
    log::set_identity("cfsupervisor-worker/" + std::to_string(init->init.worker_id));
    if (init->init.fault_point != 0) {
        const auto point = static_cast<FaultPoint>(init->init.fault_point);
        if (!kFaultInjectionBuilt || fault_point_name(point) == "none") {
            log::error("cannot start: Init asks for fault point {}, which this build does not have",
                       init->init.fault_point);
            return EXIT_FAILURE;
        }
        if (point == FaultPoint::hostile)
            log::warning("testing: this worker runs an attack script once sandboxed");
        else if (point == FaultPoint::read_stall)
            log::warning("testing: this worker's first READ stalls for {} s", kReadStallSeconds);
        else
            log::warning("testing: this worker crashes (abort) at {}", fault_point_name(point));
        arm_fault(point);
    }
    if (init->init.log_level <= static_cast<std::uint32_t>(log::Level::error))
        log::set_level(static_cast<log::Level>(init->init.log_level));
    if (::fcntl(sock, F_SETFL, O_NONBLOCK) < 0) {
        log::error("{}", sys_error("using the supervisor socket").message());
        return EXIT_FAILURE;
    }
    // Mapped before the sandbox; a page that cannot be used costs the figures in
    // `cfsupervisor status`, never the serving.
    auto stats_page = worker::MappedStatsPage::map(init->stats_page);
    if (!stats_page) log::warning("no statistics: {}", stats_page.error().message());
    init->stats_page.reset();
    // Remote blob stores: everything curl needs from files is loaded now, before the
    // sandbox (worker/store_backends.h); the supervisor resolved their hosts.
    // Store 0's directory is the blob directory; the others', in store order (empty
    // for a store with none), are the volume directories.
    std::vector<wire::BlobStore> store_configs;
    std::vector<unique_fd> volume_dirs;
    for (std::size_t i = 0; i < init->stores.size(); ++i) {
        store_configs.push_back(std::move(init->stores[i].store));
        if (i > 0) volume_dirs.push_back(std::move(init->stores[i].dir));
    }
    auto stores = worker::StoreBackends::prepare(std::move(store_configs),
                                                 [page = stats_page ? stats_page->get() : nullptr] {
                                                     worker::count_fetch_error(page);
                                                 });
    if (!stores) {
        log::error("cannot start: {}", stores.error().message());
        return EXIT_FAILURE;
    }
    const bool remote = stores->any_remote();
    std::optional<worker::NetworkAccess> network;
    if (remote) network = worker::NetworkAccess{stores->connect_ports()};
    // Before the sandbox: asking for huge pages takes madvise, which its policy lacks.
    auto copy_buffer = worker::allocate_copy_buffer();
    if (!copy_buffer) {
        log::error("cannot start: no memory for the {} MiB copy buffer", worker::kCopyChunkSize >> 20);
        return EXIT_FAILURE;
    }
    auto policy = seccomp::builtin_policy_for(remote);
    if (!policy) {
        log::error("cannot start: {}", policy.error().message());
        return EXIT_FAILURE;
    }
    auto sandboxed = worker::enter_sandbox(std::move(init->stores.front().dir), options.user, *policy, network,
                                           std::move(volume_dirs));
    if (!sandboxed) {
        log::error("cannot enter the sandbox: {}", sandboxed.error().message());
        return EXIT_FAILURE;
    }
    if (sandboxed->landlock.abi == 0)
        log::warning("no Landlock: {}; the worker is confined by its namespaces, user and seccomp filter only",
                     sandboxed->landlock.unavailable);
    log::debug("sandboxed as uid {} gid {} (Landlock ABI {})", options.user.uid, options.user.gid,
               sandboxed->landlock.abi);
    if (remote && sandboxed->landlock.abi > 0 && sandboxed->landlock.abi < 4)
        log::info("Landlock ABI {} cannot restrict TCP: this worker may connect to any port its seccomp policy allows",
                  sandboxed->landlock.abi);
#ifdef CFS_FAULT_INJECTION
    const int blob_dir_fd = sandboxed->blob_dir.get();
#endif
    std::vector<unique_fd> dirs;
    dirs.push_back(std::move(sandboxed->blob_dir));
    for (unique_fd& dir : sandboxed->volume_dirs) dirs.push_back(std::move(dir));
    stores->attach_dirs(std::move(dirs));
    std::function<void()> after_ready;
#ifdef CFS_FAULT_INJECTION
    if (armed(FaultPoint::hostile))
        after_ready = [target = testing::HostileTarget{.supervisor_socket = sock,
                                                       .device = init->device.get(),
                                                       .blob_dir = blob_dir_fd,
                                                       .supervisor = options.parent}] {
            testing::run_hostile_script(target);
        };
#endif
    log::debug("serving");
    return serve(sock, std::move(*init), *stores, worker::RequestStats(stats_page ? stats_page->get() : nullptr),
                 std::move(copy_buffer), after_ready);
}
