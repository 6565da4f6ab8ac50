#include "common/log.h"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "tests/unit/stderr_capture.h"

namespace {

namespace log = cfs::log;

struct Captured {
    log::Level level;
    std::string message;
    std::optional<std::uint64_t> object_id;
    std::string volume, cookie_key, message_id;
    std::optional<long> worker_pid;
};
std::vector<Captured> g_captured;

void capture(log::Level level, std::string_view message, const log::Fields& f) {
    g_captured.push_back({level, std::string(message), f.object_id, std::string(f.volume), std::string(f.cookie_key),
                          std::string(f.message_id), f.worker_pid});
}

// Installs the capturing sink for one test, and restores stderr and the level after.
struct SinkGuard {
    log::Level saved = log::level();
    SinkGuard() {
        g_captured.clear();
        log::set_sink(capture);
    }
    ~SinkGuard() {
        log::set_sink(nullptr);
        log::set_level(saved);
    }
};

}  // namespace

TEST_CASE("log: fields reach the sink with the formatted message; unset ones stay unset") {
    SinkGuard guard;
    log::set_level(log::Level::debug);
    log::warning(log::Fields{.worker_pid = 42, .message_id = "9c030c31deb54f55ad5cbf82632aeb9b"},
                 "worker {} (pid {}) died", 1, 42);
    log::debug(log::Fields{.object_id = 7, .volume = "erofs,img", .cookie_key = "img_a"}, "object {}", 7);
    log::error("plain {}", "line");
    REQUIRE(g_captured.size() == 3);
    CHECK(g_captured[0].level == log::Level::warning);
    CHECK(g_captured[0].message == "worker 1 (pid 42) died");
    CHECK(g_captured[0].worker_pid == 42);
    CHECK(g_captured[0].message_id == "9c030c31deb54f55ad5cbf82632aeb9b");
    CHECK_FALSE(g_captured[0].object_id.has_value());
    CHECK(g_captured[1].object_id == 7u);
    CHECK(g_captured[1].volume == "erofs,img");
    CHECK(g_captured[1].cookie_key == "img_a");
    CHECK_FALSE(g_captured[1].worker_pid.has_value());
    CHECK(g_captured[2].message == "plain line");
    CHECK(g_captured[2].message_id.empty());
    CHECK_FALSE(g_captured[2].worker_pid.has_value());
}

TEST_CASE("log: lines below the level never reach the sink, with or without fields") {
    SinkGuard guard;
    log::set_level(log::Level::warning);
    log::info(log::Fields{.worker_pid = 1}, "hidden {}", 1);
    log::debug("hidden");
    log::warning(log::Fields{.worker_pid = 2}, "shown");
    REQUIRE(g_captured.size() == 1);
    CHECK(g_captured[0].message == "shown");
}

TEST_CASE("log: set_sink(nullptr) goes back to stderr") {
    cfs::testing::StderrCapture err;
    {
        SinkGuard guard;
        log::error("log_test: to the sink");
    }
    const auto before = g_captured.size();
    log::error(log::Fields{.worker_pid = 3}, "log_test: back on stderr");
    CHECK(g_captured.size() == before);
    const std::string text = err.text();
    INFO("stderr:\n", text);
    CHECK(text.find("log_test: back on stderr\n") != std::string::npos);
    CHECK(text.find("log_test: to the sink") == std::string::npos);
}
