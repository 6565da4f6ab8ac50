#include "supervisor/journal_log.h"

#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/unique_fd.h"

namespace {

namespace log = cfs::log;
using cfs::unique_fd;

// A journal that takes datagrams only when the test reads them.
struct FakeJournal {
    std::string dir;
    std::string path;
    unique_fd fd;

    FakeJournal() {
        char templ[] = "/tmp/cfs-journal-XXXXXX";
        REQUIRE(::mkdtemp(templ) != nullptr);
        dir = templ;
        path = dir + "/socket";
        fd = unique_fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        REQUIRE(fd);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        path.copy(address.sun_path, path.size());
        REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    }
    ~FakeJournal() {
        ::unlink(path.c_str());
        ::rmdir(dir.c_str());
        log::set_sink(nullptr);
    }

    // Every entry queued, in order.
    std::vector<std::string> drain() {
        std::vector<std::string> entries;
        std::string buffer(1 << 16, '\0');
        for (;;) {
            const ssize_t n = ::recv(fd.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
            if (n < 0) break;
            entries.emplace_back(buffer.data(), static_cast<std::size_t>(n));
        }
        return entries;
    }
};

// The value of a text-form field ("NAME=value\n"); empty if absent.
std::string field(const std::string& entry, const std::string& name) {
    const std::string text = "\n" + entry, key = "\n" + name + "=";
    const std::size_t at = text.find(key);
    if (at == std::string::npos) return {};
    const std::size_t begin = at + key.size();
    return text.substr(begin, text.find('\n', begin) - begin);
}

}  // namespace

TEST_CASE("journal: an entry carries the message, priority and fields; a newline goes in binary form") {
    FakeJournal journal;
    REQUIRE(cfs::supervisor::log_to_journal_at(journal.path));
    log::warning(log::Fields{.object_id = 7, .volume = "erofs,a\nb", .worker_pid = 42}, "worker {} died", 1);
    const auto entries = journal.drain();
    REQUIRE(entries.size() == 1);
    CHECK(field(entries[0], "MESSAGE") == "worker 1 died");
    CHECK(field(entries[0], "PRIORITY") == "4");
    CHECK(field(entries[0], "SYSLOG_IDENTIFIER") == "cfsupervisor");
    CHECK(field(entries[0], "OBJECT_ID") == "7");
    CHECK(field(entries[0], "WORKER_PID") == "42");
    // VOLUME\n, its size as 64-bit little endian, the bytes, \n.
    const std::string binary = std::string("VOLUME\n") + std::string("\x09\0\0\0\0\0\0\0", 8) + "erofs,a\nb\n";
    CHECK(entries[0].find(binary) != std::string::npos);
    CHECK(field(entries[0], "COOKIE_KEY").empty());
}

TEST_CASE("journal: a full journal drops lines instead of blocking, and the next line says how many") {
    FakeJournal journal;
    REQUIRE(cfs::supervisor::log_to_journal_at(journal.path));
    // More than any unix datagram queue holds (net.unix.max_dgram_qlen): a blocking
    // send would hang here, and the test's timeout fails it.
    constexpr int kLines = 5000;
    for (int i = 0; i < kLines; ++i) log::error("line {}", i);
    const std::uint64_t dropped = cfs::supervisor::journal_lines_dropped();
    const auto queued = journal.drain();
    REQUIRE(dropped > 0);
    CHECK(queued.size() + dropped == kLines);
    CHECK(field(queued.front(), "MESSAGE") == "line 0");

    log::error("after");
    const auto after = journal.drain();
    REQUIRE(after.size() == 2);
    CHECK(field(after[0], "MESSAGE") == std::to_string(dropped) +
                                            " log line(s) dropped: the journal was not taking entries "
                                            "(journald restarting or behind)");
    CHECK(field(after[0], "PRIORITY") == "4");
    CHECK(field(after[1], "MESSAGE") == "after");
    CHECK(cfs::supervisor::journal_lines_dropped() == 0);
}
