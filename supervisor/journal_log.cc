#include "supervisor/journal_log.h"

#include "common/log.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace cfs::supervisor {
namespace {

constexpr const char* kJournalSocket = "/run/systemd/journal/socket";

// syslog(3) priorities.
int priority(log::Level level) {
    switch (level) {
        case log::Level::debug: return 7;
        case log::Level::info: return 6;
        case log::Level::warning: return 4;
        case log::Level::error: return 3;
    }
    return 6;
}

bool stderr_is_journal_stream() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    return ::fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

void journal_sink(log::Level level, std::string_view message, const log::Fields& fields) {
    // Field values may hold any byte (a volume key comes from the kernel): the native
    // protocol takes binary values, so each field is one iovec, never formatted in.
    std::array<std::string, 8> text;
    std::array<iovec, 8> iov{};
    std::size_t n = 0;
    auto add = [&](std::string_view name, std::string_view value) {
        text[n] = std::string(name) + '=' + std::string(value);
        iov[n] = iovec{text[n].data(), text[n].size()};
        ++n;
    };
    add("MESSAGE", message);
    add("PRIORITY", std::to_string(priority(level)));
    add("SYSLOG_IDENTIFIER", "cfsupervisor");
    if (fields.object_id) add("OBJECT_ID", std::to_string(*fields.object_id));
    if (!fields.volume.empty()) add("VOLUME", fields.volume);
    if (!fields.cookie_key.empty()) add("COOKIE_KEY", fields.cookie_key);
    if (fields.worker_pid) add("WORKER_PID", std::to_string(*fields.worker_pid));
    if (!fields.message_id.empty()) add("MESSAGE_ID", fields.message_id);
    if (sd_journal_sendv(iov.data(), static_cast<int>(n)) < 0) log::write_stderr(level, message);
}

}  // namespace

bool log_to_journal_if_under_systemd() {
    bool use = stderr_is_journal_stream();
    if (!use && sd_booted() > 0 && ::isatty(STDERR_FILENO) == 0) {
        struct stat st {};
        use = ::stat(kJournalSocket, &st) == 0 && S_ISSOCK(st.st_mode);
    }
    if (use) log::set_sink(journal_sink);
    return use;
}

}  // namespace cfs::supervisor
