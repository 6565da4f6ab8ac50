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
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string_view>

#include "common/fault_point.h"
#include "common/fd_passing.h"
#include "common/kernel_msg.h"
#include "common/log.h"
#include "common/seccomp_policy.h"
#include "common/unique_fd.h"
#include "common/worker_protocol.h"
#include "common/blob_url.h"
#include "worker/http_backend.h"
#include "worker/kernel_io.h"
#include "worker/layered_backend.h"
#include "worker/local_backend.h"
#include "worker/request_handler.h"
#include "worker/verifying_backend.h"
#include "worker/request_stats.h"
#include "worker/sandbox.h"
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

struct InitReceived {
    wire::Init init;
    unique_fd device;
    unique_fd blob_dir;
    unique_fd stats_page;
};

Result<InitReceived> receive_init(int sock) {
    pollfd p{sock, POLLIN, 0};
    if (::poll(&p, 1, kInitTimeoutMs) <= 0) return logic_error("no Init from the supervisor");
    std::array<std::byte, wire::kMaxMessageSize> buffer;
    auto received = receive_message(sock, buffer, kMaxFdsPerMessage);
    if (!received) return std::move(received).error();
    if (received->size == 0) return logic_error("the supervisor closed the connection");
    auto m = wire::decode(std::span(buffer).first(received->size), received->fds.size());
    if (!m) return std::move(m).error();
    auto* init = std::get_if<wire::Init>(&*m);
    if (init == nullptr) return logic_error("first message from the supervisor is not Init");
    return InitReceived{*init, std::move(received->fds[0]), std::move(received->fds[1]),
                        std::move(received->fds[2])};
}

// `after_ready`: test builds' hostile mode, which attacks as a worker the supervisor
// already accepted (most checks apply only after Ready).
int serve(int sock, InitReceived init, worker::VerifyingBackend* remote, worker::RequestStats stats,
          const std::function<void()>& after_ready) {
    worker::DeviceKernelIo kernel(std::move(init.device));
    worker::LocalDirBackend local(std::move(init.blob_dir));
    std::optional<worker::LayeredBackend> layered;
    if (remote != nullptr) {
        // Chunk manifests live where local copies of blobs do (worker/chunk_manifest.h).
        remote->use_chunk_manifests(local);
        layered.emplace(local, *remote);
    }
    worker::BlobBackend& backend = layered ? static_cast<worker::BlobBackend&>(*layered) : local;
    worker::RequestHandler* handler_ptr = nullptr;
    worker::SocketSupervisorLink link(
        sock, [&handler_ptr](std::uint32_t id) { handler_ptr->forget(id); },
        [&handler_ptr](worker::SharedObject object) { handler_ptr->take_shared(std::move(object)); });
    worker::RequestHandler handler(kernel, backend, link, std::uint64_t{init.init.read_ahead_kib} * 1024);
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
                    if (auto sent = link.send(wire::Progress{}); !sent) {
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
    // A remote blob source: everything curl needs from files or the resolver is done
    // now, before the sandbox (worker/http_backend.h).
    std::unique_ptr<worker::HttpBackend> remote;
    std::optional<worker::VerifyingBackend> verifying;
    std::optional<worker::NetworkAccess> network;
    if (!init->init.blob_url.empty()) {
        auto url = parse_blob_url(init->init.blob_url);
        if (!url) {
            log::error("cannot start: blobs.url from the supervisor: {}", url.error().message());
            return EXIT_FAILURE;
        }
        worker::HttpOptions http{.url = *url, .resolve = init->init.blob_resolve, .ca_bundle = {}, .policy = {},
                                 .on_fetch_error = [page = stats_page ? stats_page->get() : nullptr] {
                                     worker::count_fetch_error(page);
                                 },
                                 .credentials = std::move(init->init.blob_credentials),
                                 .allowed_origins = std::move(init->init.blob_origins)};
        if (url->scheme == "https") {
            std::ifstream bundle(worker::kCaBundlePath, std::ios::binary);
            std::ostringstream text;
            text << bundle.rdbuf();
            if (!bundle || text.str().empty()) {
                log::error("cannot start: blobs.url is https, and the CA certificates in {} cannot be read",
                           worker::kCaBundlePath);
                return EXIT_FAILURE;
            }
            http.ca_bundle = text.str();
        }
        auto created = worker::HttpBackend::create(std::move(http));
        if (!created) {
            log::error("cannot start: {}", created.error().message());
            return EXIT_FAILURE;
        }
        remote = std::move(*created);
        if (auto ready = worker::prepare_sha256(); !ready) {
            log::error("cannot start: {}", ready.error().message());
            return EXIT_FAILURE;
        }
        network = worker::NetworkAccess{remote->connect_ports()};
    }
    auto policy = seccomp::builtin_policy_for(remote != nullptr);
    if (!policy) {
        log::error("cannot start: {}", policy.error().message());
        return EXIT_FAILURE;
    }
    auto sandboxed = worker::enter_sandbox(std::move(init->blob_dir), options.user, *policy, network);
    if (!sandboxed) {
        log::error("cannot enter the sandbox: {}", sandboxed.error().message());
        return EXIT_FAILURE;
    }
    init->blob_dir = std::move(sandboxed->blob_dir);
    if (sandboxed->landlock.abi == 0)
        log::warning("no Landlock: {}; the worker is confined by its namespaces, user and seccomp filter only",
                     sandboxed->landlock.unavailable);
    log::debug("sandboxed as uid {} gid {} (Landlock ABI {})", options.user.uid, options.user.gid,
               sandboxed->landlock.abi);
    if (remote && sandboxed->landlock.abi > 0 && sandboxed->landlock.abi < 4)
        log::info("Landlock ABI {} cannot restrict TCP: this worker may connect to any port its seccomp policy allows",
                  sandboxed->landlock.abi);
    std::function<void()> after_ready;
#ifdef CFS_FAULT_INJECTION
    if (armed(FaultPoint::hostile))
        after_ready = [target = testing::HostileTarget{.supervisor_socket = sock,
                                                       .device = init->device.get(),
                                                       .blob_dir = init->blob_dir.get(),
                                                       .supervisor = options.parent}] {
            testing::run_hostile_script(target);
        };
#endif
    log::debug("serving");
    if (remote)
        verifying.emplace(*remote, worker::kWholeBlobLimit, [page = stats_page ? stats_page->get() : nullptr] {
            worker::count_fetch_error(page);
        });
    return serve(sock, std::move(*init), verifying ? &*verifying : nullptr, worker::RequestStats(stats_page ? stats_page->get() : nullptr),
                 after_ready);
}
