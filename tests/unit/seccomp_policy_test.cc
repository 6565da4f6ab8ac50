// The seccomp policy text: its parser, its errors (file:line), and the built-in
// policy/worker.seccomp. What the compiled filter does to a process is
// sandbox_test.cc's subject.
#include "common/seccomp_policy.h"

#include <doctest/doctest.h>

#include <linux/cachefiles.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using namespace cfs::seccomp;

std::string error_of(std::string_view text) {
    auto p = parse_policy(text, "t.seccomp");
    REQUIRE_MESSAGE(!p.ok(), "expected an error for:\n" << text);
    CHECK(p.error().errnum == 0);
    return p.error().message();
}

const Rule* find(const Policy& p, std::string_view syscall) {
    for (const Rule& r : p.rules)
        if (r.syscall == syscall) return &r;
    return nullptr;
}

}  // namespace

TEST_CASE("seccomp policy: the built-in policy/worker.seccomp parses and compiles") {
    auto p = parse_policy(builtin_worker_policy(), kBuiltinWorkerPolicyOrigin);
    REQUIRE_MESSAGE(p.ok(), p.error().message());
    CHECK(p->origin == kBuiltinWorkerPolicyOrigin);
    CHECK(p->rules.size() > 20);
    // The one ioctl a worker makes, and nothing else.
    const Rule* ioctl = find(*p, "ioctl");
    REQUIRE(ioctl != nullptr);
    REQUIRE(ioctl->conditions.size() == 1);
    CHECK(ioctl->conditions[0].arg == 1);
    CHECK(ioctl->conditions[0].op == Condition::Op::equal);
    CHECK(ioctl->conditions[0].value == CACHEFILES_IOC_READ_COMPLETE);
    // What must never be there.
    for (std::string_view denied : {"socket", "connect", "execve", "execveat", "ptrace", "mount", "setuid", "clone",
                                    "clone3", "fork", "kill", "chdir", "fchdir", "seccomp", "prctl", "unshare"})
        CHECK_MESSAGE(find(*p, denied) == nullptr, denied);
    CHECK(compile(*p, ::getpid()).ok());
}

TEST_CASE("seccomp policy: remote workers get policy/worker-remote.seccomp on top of the base policy, TCP only") {
    auto base = builtin_policy_for(false);
    auto remote = builtin_policy_for(true);
    REQUIRE_MESSAGE(base.ok(), base.error().message());
    REQUIRE_MESSAGE(remote.ok(), remote.error().message());
    CHECK(find(*base, "socket") == nullptr);
    CHECK(find(*base, "connect") == nullptr);
    CHECK(remote->rules.size() > base->rules.size());
    for (std::size_t i = 0; i < base->rules.size(); ++i) CHECK(describe(remote->rules[i]) == describe(base->rules[i]));
    CHECK(remote->rules.back().origin == kBuiltinRemoteWorkerPolicyOrigin);
    // Every socket rule: AF_INET or AF_INET6, stream, TCP.
    unsigned sockets = 0;
    for (const Rule& r : remote->rules) {
        if (r.syscall != "socket") continue;
        ++sockets;
        REQUIRE(r.conditions.size() == 3);
        CHECK((r.conditions[0].value == AF_INET || r.conditions[0].value == AF_INET6));
        CHECK(r.conditions[2].value == IPPROTO_TCP);
    }
    CHECK(sockets == 2);
    for (std::string_view denied : {"bind", "listen", "accept", "accept4", "execve", "clone", "ptrace"})
        CHECK_MESSAGE(find(*remote, denied) == nullptr, denied);
    CHECK(compile(*remote, ::getpid()).ok());
}

TEST_CASE("seccomp policy: an extension may not repeat or contradict the base policy") {
    auto base = parse_policy("read\nfcntl arg1 == F_SETFD\n", "base");
    REQUIRE(base.ok());
    auto again = extend_policy(*base, "\nread\n", "ext");
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().message() == "ext:2: 'read' is already allowed with any arguments on base:1");
    auto same = extend_policy(*base, "fcntl arg1 == F_SETFD\n", "ext");
    REQUIRE_FALSE(same.ok());
    CHECK(same.error().message() == "ext:1: the same rule as base:2");
    auto more = extend_policy(*base, "fcntl arg1 == F_GETFL\nconnect\n", "ext");
    REQUIRE_MESSAGE(more.ok(), more.error().message());
    CHECK(more->rules.size() == 4);
    CHECK(more->origin == "base + ext");
    CHECK(more->rules[3].origin == "ext");
    CHECK(more->rules[3].line == 2);
}

TEST_CASE("seccomp policy: rules, conditions, values and comments") {
    auto p = parse_policy("# a comment\n"
                          "\n"
                          "read   # trailing comment\n"
                          "\tioctl arg1 == CACHEFILES_IOC_READ_COMPLETE\n"
                          "openat arg2 in O_RDONLY|O_CLOEXEC|0x100\n"
                          "tgkill arg0 == SELF_PID && arg2 == SIGABRT\n"
                          "write arg0 == 2\n"
                          "write arg0 == 1\n"
                          "fcntl arg0 >= 3 && arg1 == 4\n",
                          "t.seccomp");
    REQUIRE_MESSAGE(p.ok(), p.error().message());
    REQUIRE(p->rules.size() == 7);
    CHECK(p->rules[0].syscall == "read");
    CHECK(p->rules[0].line == 3);
    CHECK(p->rules[0].number == SYS_read);
    CHECK(p->rules[0].conditions.empty());
    CHECK(p->rules[1].line == 4);
    CHECK(describe(p->rules[1]) == "ioctl arg1 == CACHEFILES_IOC_READ_COMPLETE");
    const Condition& flags = p->rules[2].conditions.at(0);
    CHECK(flags.arg == 2);
    CHECK(flags.op == Condition::Op::within);
    CHECK(flags.value == (O_RDONLY | O_CLOEXEC | 0x100));
    REQUIRE(p->rules[3].conditions.size() == 2);
    CHECK(p->rules[3].conditions[0].self_pid);
    CHECK(p->rules[3].conditions[1].value == SIGABRT);
    CHECK(describe(p->rules[3]) == "tgkill arg0 == SELF_PID && arg2 == SIGABRT");
    CHECK(describe(p->rules[5]) == "write arg0 == 1");
    CHECK(p->rules[6].conditions.at(0).op == Condition::Op::at_least);
    CHECK(p->rules[6].conditions.at(0).value == 3);
    CHECK(describe(p->rules[6]) == "fcntl arg0 >= 3 && arg1 == 4");
    CHECK(compile(*p, ::getpid()).ok());
}

TEST_CASE("seccomp policy: '>=' compiles to aligned blocks from the value up to 2^32, over all 64 bits") {
    using Blocks = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
    const std::uint64_t high = ~std::uint64_t{0xffffffff};
    CHECK(at_least_blocks(0) == Blocks{{high, 0}});
    CHECK(at_least_blocks(0x80000000) == Blocks{{high | 0x80000000, 0x80000000}});
    const auto three = at_least_blocks(3);
    REQUIRE(three.size() == 31);  // 3, 4-7, 8-15, ..., 2^31 to 2^32-1
    CHECK(three[0] == std::pair<std::uint64_t, std::uint64_t>{~std::uint64_t{0}, 3});
    CHECK(three[1] == std::pair<std::uint64_t, std::uint64_t>{~std::uint64_t{3}, 4});
    // Every value is in exactly one block when it is in [3, 2^32), in none otherwise.
    for (const std::uint64_t x : {0ULL, 1ULL, 2ULL, 3ULL, 4ULL, 7ULL, 8ULL, 1000ULL, 0x7fffffffULL, 0x80000000ULL,
                                  0xffffffffULL, 0x100000000ULL, 0x100000002ULL, ~0ULL}) {
        unsigned in = 0;
        for (const auto& [mask, value] : three) in += (x & mask) == value;
        CHECK_MESSAGE(in == ((x >= 3 && x <= 0xffffffffULL) ? 1U : 0U), x);
    }
    CHECK(at_least_blocks(0x100000000).empty());
}

TEST_CASE("seccomp policy: every error names file:line and what is wrong") {
    CHECK(error_of("read\nopneat\n") == "t.seccomp:2: 'opneat' is not a system call on this architecture");
    CHECK(error_of("Read\n") == "t.seccomp:1: expected a syscall name (lower case, digits, '_'), got 'Read'");
    CHECK(error_of("ioctl argv == 1\n") == "t.seccomp:1: expected arg0 to arg5, got 'argv'");
    CHECK(error_of("ioctl arg6 == 1\n") == "t.seccomp:1: expected arg0 to arg5, got 'arg6'");
    CHECK(error_of("ioctl arg1 = 1\n") == "t.seccomp:1: expected '==', 'in' or '>=' after arg1, got '='");
    CHECK(error_of("ioctl arg1 ==\n").starts_with("t.seccomp:1: incomplete condition at the end of the line"));
    CHECK(error_of("ioctl arg1 == 1 arg2 == 2\n") ==
          "t.seccomp:1: expected '&&' between conditions, got 'arg2'");
    CHECK(error_of("ioctl arg1 == O_CREAT\n").starts_with("t.seccomp:1: unknown name 'O_CREAT' (known: "));
    CHECK(error_of("ioctl arg1 == 0x\n") ==
          "t.seccomp:1: expected a number (decimal or 0x hex) below 2^64, got '0x'");
    CHECK(error_of("ioctl arg1 == 18446744073709551616\n") ==
          "t.seccomp:1: expected a number (decimal or 0x hex) below 2^64, got '18446744073709551616'");
    CHECK(error_of("ioctl arg1 == 1||2\n") ==
          "t.seccomp:1: expected a value, got an empty term (two '|' in a row?)");
    CHECK(error_of("kill arg0 in SELF_PID\n") == "t.seccomp:1: SELF_PID is one pid: use '== SELF_PID'");
    CHECK(error_of("kill arg0 >= SELF_PID\n") == "t.seccomp:1: SELF_PID is one pid: use '== SELF_PID'");
    CHECK(error_of("fcntl arg0 >= 0x100000000\n") ==
          "t.seccomp:1: '>=' compares 32-bit values (fds, counts); 0x100000000 is larger");
    CHECK(error_of("mmap arg0 >= 1 && arg1 >= 2\n") == "t.seccomp:1: one '>=' condition per rule");
    CHECK(error_of("kill arg0 == SELF_PID|1\n") == "t.seccomp:1: SELF_PID stands alone: 'argN == SELF_PID'");
    CHECK(error_of("mmap arg2 in 1 && arg2 in 2\n") ==
          "t.seccomp:1: two conditions on arg2 in one rule; write two rules to allow either");
    CHECK(error_of("read\n\nread\n") == "t.seccomp:3: 'read' is already allowed with any arguments on line 1");
    CHECK(error_of("read\nread arg0 == 1\n") == "t.seccomp:2: 'read' is already allowed with any arguments on line 1");
    CHECK(error_of("read arg0 == 1\nread\n") ==
          "t.seccomp:2: 'read' is allowed with any arguments here, but with conditions on line 1; keep one or the "
          "other");
    CHECK(error_of("read arg0 == 1\nread arg0 == 1 # again\n") == "t.seccomp:2: the same rule as line 1");
    CHECK(error_of("# nothing\n\n") == "t.seccomp:1: the policy allows no system call");
    CHECK(error_of("") == "t.seccomp:1: the policy allows no system call");
    // Whatever the file holds, the message stays one printable line.
    CHECK(error_of("read\nioctl arg1 == \x1b[31m\n").find('\x1b') == std::string::npos);
}

TEST_CASE("seccomp policy: load_policy reads a file and names it in errors") {
    char path[] = "/tmp/cfs-policy-test.XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    const std::string_view text = "read\nwrite arg0 == bogus\n";
    REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    ::close(fd);
    auto p = load_policy(path);
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().message().starts_with(std::string(path) + ":2: unknown name 'bogus'"));
    ::unlink(path);

    auto missing = load_policy("/nonexistent/worker.seccomp");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().errnum == ENOENT);
    CHECK(missing.error().message() ==
          "opening policy file /nonexistent/worker.seccomp: No such file or directory");
}
