// Resolving workers.user, and `cfsupervisor check-policy`, which prints it with the
// rest of the worker sandbox.
#include "supervisor/check_policy.h"
#include "supervisor/worker_user.h"

#include <doctest/doctest.h>

#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace {

using namespace cfs::supervisor;

// A file in /tmp removed at the end of the test.
class TempFile {
public:
    explicit TempFile(const std::string& content) {
        char templ[] = "/tmp/cfs-check-policy-test.XXXXXX";
        const int fd = ::mkstemp(templ);
        REQUIRE(fd >= 0);
        ::close(fd);
        path_ = templ;
        std::ofstream(path_) << content;
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() { ::unlink(path_.c_str()); }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// A user of this machine that is not root, or empty.
std::string some_unprivileged_user() {
    for (const char* name : {"nobody", "daemon", "bin"}) {
        const passwd* pw = ::getpwnam(name);
        if (pw != nullptr && pw->pw_uid != 0 && pw->pw_gid != 0) return name;
    }
    return {};
}

std::string config_with_user(const std::string& user) {
    return "[cache]\ndir = \"/c\"\n[blobs]\ndir = \"/b\"\n[workers]\nuser = \"" + user + "\"\n";
}

}  // namespace

TEST_CASE("worker user: an existing unprivileged user resolves to its uid and primary gid") {
    const std::string name = some_unprivileged_user();
    if (name.empty()) {
        MESSAGE("no unprivileged user (nobody, daemon, bin) on this machine; skipped");
        return;
    }
    auto user = resolve_worker_user(name);
    REQUIRE_MESSAGE(user.ok(), user.error().message());
    const passwd* pw = ::getpwnam(name.c_str());
    CHECK(user->name == name);
    CHECK(user->uid == pw->pw_uid);
    CHECK(user->gid == pw->pw_gid);
}

TEST_CASE("worker user: a missing user or root is refused, naming the user") {
    auto missing = resolve_worker_user("cfs-no-such-user");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().message() ==
          "the workers' user \"cfs-no-such-user\" (workers.user) does not exist; the default one is created by "
          "units/cfsupervisor.sysusers (systemd-sysusers)");
    auto root = resolve_worker_user("root");
    REQUIRE_FALSE(root.ok());
    CHECK(root.error().message() ==
          "the workers' user \"root\" (workers.user) has uid 0 and gid 0; workers must not run with uid or gid 0");
}

TEST_CASE("check-policy: prints the user and every rule; the exit status says whether all is usable") {
    const std::string name = some_unprivileged_user();
    if (name.empty()) {
        MESSAGE("no unprivileged user (nobody, daemon, bin) on this machine; skipped");
        return;
    }
    const TempFile config(config_with_user(name));
    auto run = [](const CheckPolicyOptions& options, std::string& printed) {
        std::FILE* out = std::tmpfile();
        REQUIRE(out != nullptr);
        const int status = check_policy(options, out);
        std::rewind(out);
        printed.clear();
        for (int c; (c = std::fgetc(out)) != EOF;) printed += static_cast<char>(c);
        std::fclose(out);
        return status;
    };
    std::string printed;
    // The built-in policy with a user that exists: 0.
    CHECK(run({config.path(), true, {}}, printed) == EXIT_SUCCESS);
    const passwd* pw = ::getpwnam(name.c_str());
    CHECK(printed.find("user        " + name + " (uid " + std::to_string(pw->pw_uid) + ", gid " +
                       std::to_string(pw->pw_gid) + "), workers.user in " + config.path()) != std::string::npos);
    CHECK(printed.find("namespaces  mount") != std::string::npos);
    CHECK(printed.find("landlock    reading files and directories beneath /blobs") != std::string::npos);
    CHECK(printed.find("ioctl arg1 == CACHEFILES_IOC_READ_COMPLETE\n") != std::string::npos);
    CHECK(printed.find("tgkill arg0 == SELF_PID && arg2 == SIGABRT\n") != std::string::npos);
    // Remote workers' additions, printed after the base rules.
    CHECK(printed.find("remote      no url in [blobs] or any [[volume]]: workers are local only\n") != std::string::npos);
    const auto remote_at = printed.find("remote workers (blobs.url) also, ");
    REQUIRE(remote_at != std::string::npos);
    const auto socket_at = printed.find(
        "socket arg0 == AF_INET && arg1 in SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC && arg2 == IPPROTO_TCP\n");
    REQUIRE(socket_at != std::string::npos);
    CHECK(socket_at > remote_at);
    const auto connect_at = printed.find("connect\n");
    REQUIRE(connect_at != std::string::npos);
    CHECK(connect_at > remote_at);
    // An edited policy that does not parse: 1, nothing printed (the error, with
    // file:line, is logged).
    const TempFile bad("read\nioctl arg1 == NOT_A_CONSTANT\n");
    CHECK(run({config.path(), true, bad.path()}, printed) == EXIT_FAILURE);
    CHECK(printed.empty());
    // An edited policy that parses: printed instead of the built-in one.
    const TempFile good("read\nioctl arg1 == 0x5401\n");
    CHECK(run({config.path(), true, good.path()}, printed) == EXIT_SUCCESS);
    CHECK(printed.find("seccomp policy from " + good.path()) != std::string::npos);
    CHECK(printed.find("line 2   ioctl arg1 == 0x5401\n") != std::string::npos);
    // A policy file that is not there: 1.
    CHECK(run({config.path(), true, "/nonexistent/worker.seccomp"}, printed) == EXIT_FAILURE);
    // A user that does not exist: 1, after printing the policy.
    const TempFile no_user(config_with_user("cfs-no-such-user"));
    CHECK(run({no_user.path(), true, {}}, printed) == EXIT_FAILURE);
    CHECK(printed.find("cfs-no-such-user (workers.user in " + no_user.path() + "): NOT USABLE: ") != std::string::npos);
    // A config that was asked for and is broken: 78, like `run`.
    const TempFile broken("[cache\n");
    CHECK(run({broken.path(), true, {}}, printed) == 78);
}
