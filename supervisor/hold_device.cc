#include "supervisor/hold_device.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/log.h"
#include "supervisor/control_commands.h"
#include "common/unique_fd.h"

namespace cfs::supervisor {

HoldOutcome hold_device(std::string_view why, ControlServer* control, std::chrono::milliseconds retry_after) {
    using Clock = std::chrono::steady_clock;
    const std::string status = fmt::format(
        "not serving: cannot start: {}; holding the cache device so that mounted images survive (their reads wait); "
        "trying again every {} s and at SIGHUP",
        why, std::chrono::duration_cast<std::chrono::seconds>(retry_after).count());
    log::warning("{}", status);
    (void)sd_notify(0, fmt::format("READY=1\nSTATUS={}", status).c_str());

    sigset_t mask;
    ::sigemptyset(&mask);
    for (int s : {SIGTERM, SIGINT, SIGHUP}) ::sigaddset(&mask, s);
    ::sigprocmask(SIG_BLOCK, &mask, nullptr);
    unique_fd signals(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    std::uint64_t watchdog_usec = 0;
    const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
    // Root's `reload` after fixing what stopped the start retries now, and is told
    // the outcome; every other request gets why the supervisor is not serving.
    bool reload_asked = false;
    const ControlServer::Handler answer = [&status, &reload_asked](std::string_view request, bool admin) {
        const auto routed = route_control_request(request, admin);
        const auto* command = std::get_if<ControlCommandId>(&routed);
        if (command != nullptr && *command == ControlCommandId::reload) {
            reload_asked = true;
            return ControlReply::later(kHoldReloadAnswerWithin);
        }
        return ControlReply{control::Code::failed, status + "\n"};
    };

    const auto until = Clock::now() + retry_after;
    for (;;) {
        const auto now = Clock::now();
        if (now >= until) return HoldOutcome{HoldOutcome::retry, std::nullopt};
        if (watchdog) (void)sd_notify(0, "WATCHDOG=1");
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(until - now);
        if (watchdog) wait = std::min(wait, std::chrono::milliseconds(watchdog_usec / 2000));
        if (control) control->expire(now);

        std::vector<pollfd> fds{{signals.get(), POLLIN, 0}};
        if (control) {
            fds.push_back({control->listener(), POLLIN, 0});
            // Those accepted before this hold's last retry too: a client that
            // connected just before it gets its answer here, not a close at its deadline.
            for (int c : control->awaiting_request()) fds.push_back({c, POLLIN, 0});
        }
        if (::poll(fds.data(), fds.size(), static_cast<int>(wait.count()) + 1) < 0 && errno != EINTR) {
            // Cannot wait: waiting by sleeping still keeps the device.
            (void)::poll(nullptr, 0, static_cast<int>(wait.count()) + 1);
            continue;
        }
        if (fds[0].revents & POLLIN) {
            signalfd_siginfo si{};
            while (::read(signals.get(), &si, sizeof si) == sizeof si) {
                if (si.ssi_signo == SIGHUP) {
                    log::info("received SIGHUP: trying to start again");
                    return HoldOutcome{HoldOutcome::retry, std::nullopt};
                }
                log::info("received {} while holding the cache device", ::strsignal(static_cast<int>(si.ssi_signo)));
                return HoldOutcome{HoldOutcome::stop, std::nullopt};
            }
        }
        if (!control) continue;
        std::vector<int> ready;
        for (std::size_t i = 2; i < fds.size(); ++i)
            if (fds[i].revents != 0) ready.push_back(fds[i].fd);
        // Served once each: the server closes a client it answered, or drops it at its
        // deadline (expire) if its request never comes.
        std::optional<ControlServer::ClientId> reload_client;
        for (int c : ready) {
            const auto waiting = control->serve(c, answer);
            if (reload_asked && waiting && !reload_client) reload_client = waiting;
            reload_asked = false;
        }
        if (reload_client) {
            log::info("root asked to reload: trying to start again");
            return HoldOutcome{HoldOutcome::retry, reload_client};
        }
        // Watched from the next turn on (awaiting_request).
        if (fds[1].revents & POLLIN) (void)control->accept_clients();
    }
}

}  // namespace cfs::supervisor
