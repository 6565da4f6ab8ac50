#include "supervisor/control_commands.h"

#include <fmt/format.h>

#include "common/kernel_msg.h"

namespace cfs::supervisor {
namespace {

constexpr ControlCommand kCommands[] = {
    {"status", ControlCommandId::status, false, "what the daemon is doing (docs/status.md)"},
    {"status --json", ControlCommandId::status_json, false, "the same as JSON"},
    {"restart-workers", ControlCommandId::restart_workers, true,
     "replace every worker, one at a time, with a process of the worker executable as installed now; "
     "answers when done"},
    {"reload", ControlCommandId::reload, true,
     "read the config file again and apply what can change while running"},
};

}  // namespace

std::span<const ControlCommand> control_commands() { return kCommands; }

std::variant<ControlCommandId, ControlReply> route_control_request(std::string_view request, bool admin) {
    for (const auto& c : kCommands) {
        if (c.request != request) continue;
        if (c.admin_only && !admin)
            return ControlReply{control::Code::denied,
                                fmt::format("permission denied: \"{}\" is for root only\n", c.request)};
        return c.id;
    }
    std::string known;
    for (const auto& c : kCommands) known += fmt::format("{}{}", known.empty() ? "" : ", ", c.request);
    return ControlReply{control::Code::unknown_command,
                        fmt::format("unknown command \"{}\" (known: {})\n", kmsg::printable(request), known)};
}

}  // namespace cfs::supervisor
