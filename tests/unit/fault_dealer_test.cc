#include "supervisor/fault_dealer.h"

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace cfs;
using namespace cfs::supervisor;

TEST_CASE("fault dealer: no file, no fault") {
    FaultDealer d("/nonexistent/cfs-fault");
    auto f = d.next_worker();
    REQUIRE(f.ok());
    CHECK(*f == FaultPoint::none);
}

TEST_CASE("fault dealer: without a count every worker gets the fault") {
    FaultDealer d("/run/f");
    for (int i = 0; i < 3; ++i) {
        auto f = d.next_worker_from("read-mid-copy\n");
        REQUIRE(f.ok());
        CHECK(*f == FaultPoint::read_mid_copy);
    }
}

TEST_CASE("fault dealer: a count limits how many workers get it, until the content changes") {
    FaultDealer d("/run/f");
    CHECK(*d.next_worker_from("open-before-copen 2") == FaultPoint::open_before_copen);
    CHECK(*d.next_worker_from("open-before-copen 2") == FaultPoint::open_before_copen);
    CHECK(*d.next_worker_from("open-before-copen 2") == FaultPoint::none);
    CHECK(*d.next_worker_from("close-received 1") == FaultPoint::close_received);
    CHECK(*d.next_worker_from("close-received 1") == FaultPoint::none);
}

TEST_CASE("fault dealer: the same text written again starts a new count") {
    FaultDealer d("/run/f");
    CHECK(*d.next_worker_from("hostile 1", "12:100.5") == FaultPoint::hostile);
    CHECK(*d.next_worker_from("hostile 1", "12:100.5") == FaultPoint::none);
    CHECK(*d.next_worker_from("hostile 1", "13:101.0") == FaultPoint::hostile);
    CHECK(*d.next_worker_from("hostile 1", "13:101.0") == FaultPoint::none);
}

TEST_CASE("fault dealer: a file written again with the same text deals the fault again") {
    char dir[] = "/tmp/cfs-fault-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string path = std::string(dir) + "/fault";
    const std::string next = path + ".new";
    auto write_file = [&] {
        // As the VM scenarios do: a new file renamed over the old one.
        std::FILE* f = std::fopen(next.c_str(), "w");
        REQUIRE(f != nullptr);
        std::fputs("hostile 1\n", f);
        std::fclose(f);
        REQUIRE(std::rename(next.c_str(), path.c_str()) == 0);
    };
    FaultDealer d(path);
    write_file();
    CHECK(*d.next_worker() == FaultPoint::hostile);
    CHECK(*d.next_worker() == FaultPoint::none);
    write_file();
    CHECK(*d.next_worker() == FaultPoint::hostile);
    CHECK(*d.next_worker() == FaultPoint::none);
    std::remove(path.c_str());
    ::rmdir(dir);
}

TEST_CASE("fault dealer: bad content names the file and what was expected") {
    FaultDealer d("/run/f");
    auto bad = d.next_worker_from("explode");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message().find("/run/f:1: unknown fault point \"explode\"") == 0);
    bad = d.next_worker_from("read-mid-copy x");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message().find("/run/f:1: expected a worker count") == 0);
    bad = d.next_worker_from("read-mid-copy 0");
    REQUIRE_FALSE(bad.ok());
}

TEST_CASE("fault points: every name round-trips") {
    for (auto p : {FaultPoint::open_received, FaultPoint::open_before_copen, FaultPoint::open_after_copen,
                   FaultPoint::read_mid_copy, FaultPoint::read_before_complete, FaultPoint::close_received,
                   FaultPoint::supervisor_hang, FaultPoint::hostile, FaultPoint::read_stall}) {
        const auto name = fault_point_name(p);
        CAPTURE(name);
        CHECK(name != "none");
        CHECK(parse_fault_point(name) == p);
    }
    CHECK_FALSE(parse_fault_point("none").has_value());
}
