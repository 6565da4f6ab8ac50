// The supervisor's log backend under systemd: native journal entries, sent without
// ever blocking (journal_log.cc says why), with MESSAGE, PRIORITY and the line's log::Fields as fields
// (OBJECT_ID, VOLUME, COOKIE_KEY, WORKER_PID, MESSAGE_ID; supervisor/message_ids.h).
#pragma once

#include <cstdint>
#include <string_view>

namespace cfs::supervisor {

// Switches common/log to the journal when this process runs under systemd: its
// stderr is the journal stream systemd gave it (JOURNAL_STREAM names stderr's device
// and inode), or systemd is the init system, the journal's socket exists and stderr
// is not a terminal (someone watching one wants the lines there). Otherwise, and
// for any entry the journal refuses, lines stay on stderr. Must run before
// take_passed_fds() clears the environment. Returns whether it switched.
bool log_to_journal_if_under_systemd();

// The same, unconditionally, to the journal socket at `socket_path` (tests).
// False if no socket could be made.
bool log_to_journal_at(std::string_view socket_path);

// Lines the journal did not take since the last one it did (its queue was full);
// the next line that goes through is preceded by a warning with this count.
[[nodiscard]] std::uint64_t journal_lines_dropped();

}  // namespace cfs::supervisor
