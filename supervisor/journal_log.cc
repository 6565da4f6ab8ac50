#include "supervisor/journal_log.h"

#include "common/log.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "common/unique_fd.h"

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

// The journal's native protocol (systemd.io/JOURNAL_NATIVE_PROTOCOL), sent without
// blocking. sd_journal_sendv() blocks while journald's queue is full (journald
// restarting or behind), and this process's event loop is what answers failovers:
// a log line must never hold up a reader. A line the journal cannot take now is
// dropped and counted, and the next one that goes through says how many went.
class JournalSender {
public:
    [[nodiscard]] bool open(std::string_view path) {
        if (path.size() >= sizeof(address_.sun_path)) return false;
        fd_ = unique_fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (!fd_) return false;
        address_ = sockaddr_un{};
        address_.sun_family = AF_UNIX;
        path.copy(address_.sun_path, path.size());
        return true;
    }

    void send(log::Level level, std::string_view message, const log::Fields& fields) {
        if (dropped_ > 0) {
            const std::string note = fmt::format(
                "{} log line(s) dropped: the journal was not taking entries (journald restarting or behind)",
                dropped_);
            if (send_entry(log::Level::warning, note, log::Fields{}) != Sent::later) dropped_ = 0;
        }
        switch (send_entry(level, message, fields)) {
            case Sent::yes: return;
            case Sent::later: ++dropped_; return;
            // Too large for one datagram, or no journal there: stderr, which systemd
            // also gives to the journal.
            case Sent::no: log::write_stderr(level, message); return;
        }
    }

    [[nodiscard]] std::uint64_t dropped() const { return dropped_; }

private:
    enum class Sent { yes, later, no };

    // Values may hold any byte (a volume key comes from the kernel): one with a
    // newline goes in the protocol's binary form, never formatted into text.
    static void add(std::string& entry, std::string_view name, std::string_view value) {
        entry += name;
        if (value.find('\n') == std::string_view::npos) {
            entry += '=';
            entry += value;
        } else {
            entry += '\n';
            std::uint64_t size = value.size();
            for (int i = 0; i < 8; ++i) entry += static_cast<char>((size >> (8 * i)) & 0xff);
            entry += value;
        }
        entry += '\n';
    }

    [[nodiscard]] Sent send_entry(log::Level level, std::string_view message, const log::Fields& fields) {
        std::string entry;
        add(entry, "MESSAGE", message);
        add(entry, "PRIORITY", std::to_string(priority(level)));
        add(entry, "SYSLOG_IDENTIFIER", "cfsupervisor");
        if (fields.object_id) add(entry, "OBJECT_ID", std::to_string(*fields.object_id));
        if (!fields.volume.empty()) add(entry, "VOLUME", fields.volume);
        if (!fields.cookie_key.empty()) add(entry, "COOKIE_KEY", fields.cookie_key);
        if (fields.worker_pid) add(entry, "WORKER_PID", std::to_string(*fields.worker_pid));
        if (!fields.message_id.empty()) add(entry, "MESSAGE_ID", fields.message_id);
        ssize_t sent;
        do {
            sent = ::sendto(fd_.get(), entry.data(), entry.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                            reinterpret_cast<const sockaddr*>(&address_), sizeof address_);
        } while (sent < 0 && errno == EINTR);
        if (sent >= 0) return Sent::yes;
        return errno == EAGAIN || errno == ENOBUFS ? Sent::later : Sent::no;
    }

    unique_fd fd_;
    sockaddr_un address_{};
    std::uint64_t dropped_ = 0;
};

JournalSender& journal() {
    static JournalSender sender;
    return sender;
}

void journal_sink(log::Level level, std::string_view message, const log::Fields& fields) {
    journal().send(level, message, fields);
}

}  // namespace

bool log_to_journal_if_under_systemd() {
    bool use = stderr_is_journal_stream();
    if (!use && sd_booted() > 0 && ::isatty(STDERR_FILENO) == 0) {
        struct stat st {};
        use = ::stat(kJournalSocket, &st) == 0 && S_ISSOCK(st.st_mode);
    }
    return use && log_to_journal_at(kJournalSocket);
}

bool log_to_journal_at(std::string_view socket_path) {
    if (!journal().open(socket_path)) return false;
    log::set_sink(journal_sink);
    return true;
}

std::uint64_t journal_lines_dropped() { return journal().dropped(); }

}  // namespace cfs::supervisor
