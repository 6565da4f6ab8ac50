#include "common/fault_point.h"

#include <poll.h>

#include <cstdlib>

#include <array>
#include <utility>

namespace cfs {
namespace {

constexpr std::array kNames = {
    std::pair{FaultPoint::open_received, std::string_view("open-received")},
    std::pair{FaultPoint::open_before_copen, std::string_view("open-before-copen")},
    std::pair{FaultPoint::open_after_copen, std::string_view("open-after-copen")},
    std::pair{FaultPoint::read_mid_copy, std::string_view("read-mid-copy")},
    std::pair{FaultPoint::read_before_complete, std::string_view("read-before-complete")},
    std::pair{FaultPoint::close_received, std::string_view("close-received")},
    std::pair{FaultPoint::supervisor_hang, std::string_view("supervisor-hang")},
    std::pair{FaultPoint::hostile, std::string_view("hostile")},
    std::pair{FaultPoint::read_stall, std::string_view("read-stall")},
};

FaultPoint g_armed = FaultPoint::none;

}  // namespace

std::optional<FaultPoint> parse_fault_point(std::string_view name) {
    for (const auto& [point, point_name] : kNames)
        if (point_name == name) return point;
    return std::nullopt;
}

std::string_view fault_point_name(FaultPoint p) {
    for (const auto& [point, point_name] : kNames)
        if (point == p) return point_name;
    return "none";
}

std::string known_fault_points() {
    std::string out;
    for (const auto& [point, point_name] : kNames) {
        if (!out.empty()) out += ", ";
        out += point_name;
    }
    return out;
}

void arm_fault(FaultPoint p) { g_armed = p; }

#ifdef CFS_FAULT_INJECTION
bool armed(FaultPoint p) { return g_armed == p; }

void reach(FaultPoint here) {
    // A crash (SIGABRT), not a SIGKILL: the supervisor counts crashes toward restart
    // backoff and not kills from outside, and these stand for the worker's own bugs.
    if (g_armed == FaultPoint::none || g_armed != here) return;
    if (here == FaultPoint::read_stall) {
        // poll with no fds: the one way to sleep the sandbox allows. Once only.
        g_armed = FaultPoint::none;
        (void)::poll(nullptr, 0, kReadStallSeconds * 1000);
        return;
    }
    std::abort();
}
#endif

}  // namespace cfs
