// What the control socket accepts: one table, as for the worker messages
// (worker_dispatch.h). Each command says whether it only reads (root and members of
// control.group may run it) or changes the daemon (root only: `admin`), and what it
// is for; `cfsupervisor --help` and the "unknown command" answer list the same names.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "supervisor/control_server.h"

namespace cfs::supervisor {

enum class ControlCommandId { status, status_json, restart_workers, reload };

struct ControlCommand {
    std::string_view request;  // the exact datagram the CLI sends
    ControlCommandId id;
    bool admin_only;
    std::string_view what;
};

[[nodiscard]] std::span<const ControlCommand> control_commands();

// The command a request names, or the answer to give instead: unknown_command
// (listing the known ones) or denied (an admin command from someone not root).
[[nodiscard]] std::variant<ControlCommandId, ControlReply> route_control_request(std::string_view request,
                                                                                 bool admin);

}  // namespace cfs::supervisor
