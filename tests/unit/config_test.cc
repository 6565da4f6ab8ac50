#include "common/config.h"
#include "common/fault_point.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using cfs::Config;
using cfs::load_config;
using cfs::parse_config;

// The required keys, for tests about something else.
constexpr std::string_view kMinimal =
    "[cache]\n"
    "dir = \"/var/cache/cfs\"\n"
    "[blobs]\n"
    "dir = \"/var/lib/cfs/blobs\"\n";

// The error line parse_config gives for `text` (fails the test if it parsed).
std::string error_of(std::string_view text) {
    auto r = parse_config(text, "x.toml");
    REQUIRE_MESSAGE(!r.ok(), "expected an error for:\n" << text);
    CHECK(r.error().errnum == 0);
    const std::string msg = r.error().message();
    CHECK_MESSAGE(msg.find('\n') == std::string::npos, "message is not one line: " << msg);
    return msg;
}

bool starts_with(const std::string& s, std::string_view prefix) { return s.starts_with(prefix); }

// A private directory for config files, removed with its files at the end of a test.
class TempDir {
public:
    TempDir() {
        const char* base = std::getenv("TMPDIR");
        std::string templ = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                            "/cfs-config-test.XXXXXX";
        REQUIRE(::mkdtemp(templ.data()) != nullptr);
        path_ = templ;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        for (const std::string& f : files_) ::unlink(f.c_str());
        ::rmdir(path_.c_str());
    }

    std::string write(const std::string& name, std::string_view content) {
        const std::string file = path_ + "/" + name;
        std::ofstream out(file, std::ios::binary);
        out.write(content.data(), static_cast<std::streamsize>(content.size()));
        out.close();
        REQUIRE(out.good());
        files_.push_back(file);
        return file;
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    std::vector<std::string> files_;
};

}  // namespace

// ---- Valid configs ---------------------------------------------------------------

TEST_CASE("config: a full valid config sets every field") {
    auto r = parse_config(
        "# cfsupervisor\n"
        "[cache]\n"
        "dir = \"/var/cache/cfsupervisor\"\n"
        "tag = \"node-7.cache_A\"\n"
        "\n"
        "[blobs]\n"
        "dir = '/srv/blobs dir/x'   # literal string, with a space\n"
        "\n"
        "[workers]\n"
        "count = 12\n"
        "\n"
        "[log]\n"
        "level = \"warning\"\n",
        "x.toml");
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->cache_dir == "/var/cache/cfsupervisor");
    CHECK(r->cache_tag == "node-7.cache_A");
    CHECK(r->blobs.dir == "/srv/blobs dir/x");
    CHECK(r->worker_count == 12u);
    CHECK(r->log_level == cfs::log::Level::warning);
}

TEST_CASE("config: defaults are applied for optional keys") {
    auto r = parse_config(kMinimal, "x.toml");
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->cache_dir == "/var/cache/cfs");
    CHECK(r->blobs.dir == "/var/lib/cfs/blobs");
    CHECK(r->cache_tag == "cfs");
    CHECK(r->worker_count == 1u);
    CHECK(r->log_level == cfs::log::Level::info);

    // Empty optional tables change nothing either.
    auto with_tables = parse_config(std::string(kMinimal) + "[workers]\n[log]\n", "x.toml");
    REQUIRE_MESSAGE(with_tables.ok(), with_tables.error().message());
    CHECK(*with_tables == *r);
}

TEST_CASE("config: dotted keys and inline tables are the same tables") {
    auto r = parse_config(
        "cache.dir = \"/c\"\n"
        "blobs = { dir = \"/b\" }\n"
        "workers.count = 3\n",
        "x.toml");
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->cache_dir == "/c");
    CHECK(r->blobs.dir == "/b");
    CHECK(r->worker_count == 3u);
}

TEST_CASE("config: every log level name is accepted") {
    const std::pair<const char*, cfs::log::Level> cases[] = {
        {"debug", cfs::log::Level::debug},
        {"info", cfs::log::Level::info},
        {"warning", cfs::log::Level::warning},
        {"error", cfs::log::Level::error},
    };
    for (const auto& c : cases) {
        const std::string name = c.first;
        const cfs::log::Level level = c.second;
        CAPTURE(name);
        auto r = parse_config(std::string(kMinimal) + "[log]\nlevel = \"" + name + "\"\n", "x.toml");
        REQUIRE_MESSAGE(r.ok(), r.error().message());
        CHECK(r->log_level == level);
    }
}

TEST_CASE("config: the shipped example config parses to the documented defaults") {
    auto r = load_config(CFS_TEST_DATA_DIR "/../../cfsupervisor.toml.example");
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->cache_dir == "/var/cache/cfsupervisor");
    CHECK(r->cache_tag == "cfs");
    CHECK(r->blobs.dir == "/var/lib/cfsupervisor/blobs");
    CHECK(r->worker_count == 1u);
    CHECK(r->log_level == cfs::log::Level::info);
    // It is installed as /etc/cfsupervisor/cfsupervisor.toml (tests/install_layout.sh
    // checks the copy is this file): every value it sets is the default.
    Config defaults;
    defaults.cache_dir = "/var/cache/cfsupervisor";
    defaults.blobs.dir = "/var/lib/cfsupervisor/blobs";
    CHECK(*r == defaults);
}

TEST_CASE("config: the example's commented-out keys parse once uncommented") {
    std::ifstream in(CFS_TEST_DATA_DIR "/../../cfsupervisor.toml.example");
    REQUIRE(in);
    std::string text, line;
    int uncommented = 0;
    while (std::getline(in, line)) {
        // "# key = value" lines are settings left out, "# [[table]]" an example
        // table; prose never has " = " or starts with "[[".
        const bool array_table = line.starts_with("# [[") && line.ends_with("]]");
        if (line.starts_with("# ") && (line.find(" = ") != std::string::npos || array_table)) {
            line = line.substr(2);
            ++uncommented;
        }
        text += line + '\n';
    }
    CHECK(uncommented >= 1);
    auto r = parse_config(text, "example");
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->control_group == "cfsupervisor-readers");
    REQUIRE(r->volumes.size() == 1);
    CHECK(r->volumes[0].blobs.url.starts_with("https://"));
}

TEST_CASE("config: fixture file with every key loads") {
    auto r = load_config(CFS_TEST_DATA_DIR "/config/full.toml");
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->cache_dir == "/var/cache/cfsupervisor");
    CHECK(r->cache_tag == "fscache_1");
    CHECK(r->blobs == cfs::BlobStoreConfig{"/var/lib/cfsupervisor/blobs", "https://registry.test/v2/base/blobs/",
                                           "/etc/cfsupervisor/base-credentials", {"https://auth.registry.test:443"}});
    REQUIRE(r->volumes.size() == 1);
    CHECK(r->volumes[0] == cfs::VolumeConfig{"sha256:0123",
                                             {"/srv/volume-blobs", "http://other.test:5000/v2/app/blobs/",
                                              "/etc/cfsupervisor/app-credentials", {"http://store.test:9000"}}});
    CHECK(r->worker_count == 64u);
    CHECK(r->spare_count == 0u);
    CHECK(r->worker_user == "cfs-test-worker");
    CHECK(r->read_ahead_kib == 1024u);
    CHECK(r->control_group == "cfs-readers");
    CHECK(r->log_level == cfs::log::Level::debug);
}

// ---- TOML syntax -----------------------------------------------------------------

TEST_CASE("config: a syntax error names file:line:column and toml++'s description") {
    // Unterminated string: toml++ stops at the newline, column 10 of line 2.
    const std::string msg = error_of("[cache]\ndir = \"/x\n");
    CHECK(starts_with(msg, "x.toml:2:10: "));
    CHECK(msg.find("Error while parsing string") != std::string::npos);

    CHECK(starts_with(error_of("[cache\n"), "x.toml:1:7: Error while parsing table header"));
    CHECK(starts_with(error_of("[cache]\ndir = /x\n"), "x.toml:2:7: Error while parsing value"));
}

TEST_CASE("config: duplicate keys and tables are syntax errors") {
    CHECK(starts_with(error_of("[cache]\ndir = \"/a\"\ndir = \"/b\"\n"), "x.toml:3:"));
    const std::string msg = error_of("[cache]\n[blobs]\n[cache]\n");
    CHECK(starts_with(msg, "x.toml:3:1: "));
    CHECK(msg.find("cannot redefine existing table 'cache'") != std::string::npos);
}

TEST_CASE("config: a syntax error is reported before anything else") {
    // An unknown table and a missing key come first in the file; the syntax error wins.
    const std::string msg = error_of("[bogus]\n[cache]\ncount = \n");
    CHECK(starts_with(msg, "x.toml:3:"));
    CHECK(msg.find("unknown") == std::string::npos);
}

TEST_CASE("config: text that is not UTF-8 is a syntax error at the bad byte") {
    const std::string msg = error_of("[cache]\ndir = \"/a\xff\xfe\"\n");
    CHECK(starts_with(msg, "x.toml:2:"));
    CHECK(msg.find("invalid utf-8") != std::string::npos);
}

TEST_CASE("config: binary garbage is a syntax error") {
    using namespace std::string_literals;
    const std::string msg = error_of("\x00\x01\x02\x7f garbage\n"s);
    CHECK(starts_with(msg, "x.toml:1:1: "));
    CHECK(msg.find("Error while parsing") != std::string::npos);
}

// ---- Unknown tables and keys -----------------------------------------------------

TEST_CASE("config: an unknown key in a known table is named at the key") {
    const std::string msg = error_of(
        "[cache]\n"
        "dir = \"/c\"\n"
        "cahce = 1\n"
        "[blobs]\n"
        "dir = \"/b\"\n");
    CHECK(starts_with(msg, "x.toml:3:1: unknown key 'cahce' in table [cache]"));
    CHECK(msg.find("known keys: dir, tag") != std::string::npos);
}

TEST_CASE("config: an unknown table is named at its name") {
    const std::string msg = error_of(std::string(kMinimal) + "[worker]\ncount = 2\n");
    CHECK(starts_with(msg, "x.toml:5:2: unknown table [worker]"));
    CHECK(msg.find("known tables: cache, blobs, volume, workers, log") != std::string::npos);
}

TEST_CASE("config: a key outside any table is unknown") {
    const std::string msg = error_of("dir = \"/c\"\n" + std::string(kMinimal));
    CHECK(starts_with(msg, "x.toml:1:1: unknown top-level key 'dir'"));
}

TEST_CASE("config: a sub-table of a known table is an unknown key") {
    const std::string msg = error_of(std::string(kMinimal) + "[cache.extra]\nx = 1\n");
    CHECK(starts_with(msg, "x.toml:5:8: unknown key 'extra' in table [cache]"));
}

TEST_CASE("config: unknown keys inside inline tables are found") {
    const std::string msg = error_of("cache = { dir = \"/c\", tga = \"t\" }\n");
    CHECK(starts_with(msg, "x.toml:1:23: unknown key 'tga' in table [cache]"));
}

TEST_CASE("config: the earliest unknown key in the file is reported, not the first by name") {
    // 'zzz' sorts after 'aaa' but comes first in the file.
    const std::string msg = error_of(
        "[cache]\n"
        "zzz = 1\n"
        "dir = \"/c\"\n"
        "[aaa]\n");
    CHECK(starts_with(msg, "x.toml:2:1: unknown key 'zzz' in table [cache]"));
}

TEST_CASE("config: unknown keys are reported before schema errors") {
    // workers.count (line 2) and the missing [blobs] are both wrong, but the unknown
    // key on line 4 is reported.
    const std::string msg = error_of(
        "[workers]\n"
        "count = 0\n"
        "[log]\n"
        "colour = true\n");
    CHECK(starts_with(msg, "x.toml:4:1: unknown key 'colour' in table [log]"));
}

TEST_CASE("config: unknown quoted keys are shown escaped, on one line") {
    CHECK(starts_with(error_of("\"a\\nb\" = 1\n" + std::string(kMinimal)),
                      "x.toml:1:1: unknown top-level key \"a\\nb\" (every key belongs"));
    CHECK(starts_with(error_of(std::string(kMinimal) + "\"dir \" = 1\n"),
                      "x.toml:5:1: unknown key \"dir \" in table [blobs]"));
    CHECK(starts_with(error_of("[\"ca\\u0000che\"]\n"),
                      "x.toml:1:2: unknown table [\"ca\\u0000che\"]"));
}

// ---- Missing required keys -------------------------------------------------------

TEST_CASE("config: an empty file is missing cache.dir at 1:1") {
    CHECK(starts_with(error_of(""), "x.toml:1:1: missing required key cache.dir"));
    CHECK(starts_with(error_of("# only a comment\n\n"),
                      "x.toml:1:1: missing required key cache.dir"));
}

TEST_CASE("config: a missing table is reported at 1:1") {
    const std::string msg = error_of(
        "\n"
        "[cache]\n"
        "dir = \"/c\"\n");
    CHECK(starts_with(msg, "x.toml:1:1: missing required key blobs.dir"));
    CHECK(msg.find("there is no [blobs] table") != std::string::npos);
}

TEST_CASE("config: a missing key in a present table is reported at the table header") {
    const std::string msg = error_of(
        "[cache]\n"
        "dir = \"/c\"\n"
        "\n"
        "[blobs]\n"
        "[workers]\n"
        "count = 2\n");
    CHECK(starts_with(msg, "x.toml:4:1: missing required key blobs.dir: expected an absolute path"));
    CHECK(msg.find("there is no") == std::string::npos);

    // A table only made by a dotted key is located at that key's line.
    CHECK(starts_with(error_of("\ncache.tag = \"t\"\n"),
                      "x.toml:2:1: missing required key cache.dir"));
}

// ---- Types -----------------------------------------------------------------------

TEST_CASE("config: wrong value types name the expected and the actual type") {
    const std::string base(kMinimal);
    CHECK(error_of(base + "[workers]\ncount = \"2\"\n") ==
          "x.toml:6:9: workers.count: expected an integer from 1 to 64, got a string");
    CHECK(error_of(base + "[workers]\ncount = 2.0\n") ==
          "x.toml:6:9: workers.count: expected an integer from 1 to 64, got a floating-point "
          "number");
    CHECK(error_of(base + "[workers]\ncount = true\n") ==
          "x.toml:6:9: workers.count: expected an integer from 1 to 64, got a boolean");
    CHECK(error_of(base + "[workers]\ncount = [2]\n") ==
          "x.toml:6:9: workers.count: expected an integer from 1 to 64, got an array");
    CHECK(starts_with(error_of("[cache]\ndir = 5\n"),
                      "x.toml:2:7: cache.dir: expected an absolute path (a string), got an "
                      "integer"));
    CHECK(starts_with(error_of("[cache]\ndir = \"/c\"\ntag = 1979-05-27\n"),
                      "x.toml:3:7: cache.tag: expected 1 to 32 characters of [A-Za-z0-9_.-]"));
    CHECK(error_of(base + "[log]\nlevel = 1\n") ==
          "x.toml:6:9: log.level: expected one of \"debug\", \"info\", \"warning\", \"error\", "
          "got an integer");
}

TEST_CASE("config: a known table given as something else is a type error") {
    CHECK(error_of("cache = \"/var/cache\"\n") ==
          "x.toml:1:9: cache: expected a table ([cache]), got a string");
    CHECK(error_of(std::string(kMinimal) + "[[log]]\nlevel = \"info\"\n") ==
          "x.toml:5:1: log: expected a table ([log]), got an array of tables");
}

// ---- Paths -----------------------------------------------------------------------

TEST_CASE("config: paths must be absolute") {
    CHECK(error_of("[cache]\ndir = \"var/cache\"\n") ==
          "x.toml:2:7: cache.dir: expected an absolute path (starting with '/'), got "
          "\"var/cache\"");
    CHECK(error_of("[cache]\ndir = \"./c\"\n[blobs]\ndir = \"/b\"\n") ==
          "x.toml:2:7: cache.dir: expected an absolute path (starting with '/'), got \"./c\"");
    CHECK(error_of("[cache]\ndir = \"/c\"\n[blobs]\ndir = \"\"\n") ==
          "x.toml:4:7: blobs.dir: expected an absolute path, got an empty string");
}

TEST_CASE("config: '..' components are rejected, with the reason") {
    const std::string msg = error_of("[cache]\ndir = \"/var/cache/../lib\"\n");
    CHECK(starts_with(msg, "x.toml:2:7: cache.dir: expected a path without '..' components ("));
    CHECK(msg.find("the kernel resolves cache.dir itself") != std::string::npos);
    CHECK(msg.find("got \"/var/cache/../lib\"") != std::string::npos);

    CHECK(starts_with(error_of("[cache]\ndir = \"/c\"\n[blobs]\ndir = \"/b/..\"\n"),
                      "x.toml:4:7: blobs.dir: expected a path without '..' components"));
    CHECK(starts_with(error_of("[cache]\ndir = \"/..\"\n"),
                      "x.toml:2:7: cache.dir: expected a path without '..' components"));

    // Names that merely contain dots are fine.
    auto r = parse_config("[cache]\ndir = \"/a/..b/c../.../.\"\n[blobs]\ndir = \"/b//x/\"\n",
                          "x.toml");
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->cache_dir == "/a/..b/c../.../.");
    CHECK(r->blobs.dir == "/b//x/");
}

TEST_CASE("config: NUL and newline in paths are rejected and shown escaped") {
    CHECK(error_of("[cache]\ndir = \"/a\\u0000b\"\n") ==
          "x.toml:2:7: cache.dir: expected a path without NUL characters, got \"/a\\u0000b\"");
    CHECK(error_of("[cache]\ndir = \"/a\\nb\"\n") ==
          "x.toml:2:7: cache.dir: expected a path without newlines (it is sent to the kernel as "
          "one line of a command), got \"/a\\nb\"");
    // A multi-line string; the value starts at the opening quotes.
    CHECK(error_of("[cache]\ndir = \"/c\"\n[blobs]\ndir = \"\"\"/b\nx\"\"\"\n") ==
          "x.toml:4:7: blobs.dir: expected a path without newlines, got \"/b\\nx\"");
}

TEST_CASE("config: a path longer than the kernel's PATH_MAX is rejected") {
    const std::string ok_path = "/" + std::string(4094, 'a');  // 4095 bytes
    auto r = parse_config("[cache]\ndir = \"/c\"\n[blobs]\ndir = \"" + ok_path + "\"\n", "x.toml");
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->blobs.dir.size() == 4095u);

    CHECK(error_of("[cache]\ndir = \"/c\"\n[blobs]\ndir = \"" + ok_path + "a\"\n") ==
          "x.toml:4:7: blobs.dir: expected a path of at most 4095 bytes, got 4096 bytes");
}

TEST_CASE("config: a long bad value is cut in the message") {
    const std::string msg = error_of("[cache]\ndir = \"" + std::string(3000, 'r') + "\"\n");
    CHECK(starts_with(msg, "x.toml:2:7: cache.dir: expected an absolute path (starting with '/'), "
                           "got \"rrrr"));
    CHECK(msg.ends_with("rrr\"..."));
    CHECK(msg.size() < 400u);
}

// ---- Cache tag -------------------------------------------------------------------

TEST_CASE("config: the cache tag must be 1..32 characters of [A-Za-z0-9_.-]") {
    const std::string head = "[cache]\ndir = \"/c\"\ntag = ";
    const std::string tail = "\n[blobs]\ndir = \"/b\"\n";
    const std::string expected =
        "x.toml:3:7: cache.tag: expected 1 to 32 characters of [A-Za-z0-9_.-] (the kernel takes "
        "the tag verbatim), got ";

    CHECK(error_of(head + "\"my tag\"" + tail) == expected + "\"my tag\", which contains ' '");
    CHECK(error_of(head + "\"a/b\"" + tail) == expected + "\"a/b\", which contains '/'");
    CHECK(error_of(head + "\"caf\xc3\xa9\"" + tail) ==
          expected + "\"caf\xc3\xa9\", which contains '\xc3\xa9'");
    CHECK(error_of(head + "\"a\\tb\"" + tail) == expected + "\"a\\tb\", which contains '\\t'");
    CHECK(error_of(head + "\"\"" + tail) == expected + "an empty string");
    CHECK(error_of(head + "\"" + std::string(33, 't') + "\"" + tail) ==
          expected + "33 characters");

    auto r = parse_config(head + "\"" + std::string(32, 'T') + "\"" + tail, "x.toml");
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->cache_tag == std::string(32, 'T'));
    auto one = parse_config(head + "'-'" + tail, "x.toml");
    REQUIRE_MESSAGE(one.ok(), one.error().message());
    CHECK(one->cache_tag == "-");
}

// ---- Integers --------------------------------------------------------------------

TEST_CASE("config: workers.count must be from 1 to 64") {
    const std::string base = std::string(kMinimal) + "\n[workers]\ncount = ";
    const std::string expected = "x.toml:7:9: workers.count: expected an integer from 1 to 64, got ";
    CHECK(error_of(base + "0\n") == expected + "0");
    CHECK(error_of(base + "-1\n") == expected + "-1");
    CHECK(error_of(base + "65\n") == expected + "65");
    CHECK(error_of(base + "4294967297\n") == expected + "4294967297");  // 2^32 + 1
    CHECK(error_of(base + "-9223372036854775808\n") == expected + "-9223372036854775808");
    CHECK(error_of(base + "9223372036854775807\n") == expected + "9223372036854775807");
    CHECK(error_of(base + "0x41\n") == expected + "65");

    const std::pair<const char*, unsigned> valid[] = {{"1", 1}, {"64", 64}, {"+7", 7}, {"0x40", 64}};
    for (const auto& v : valid) {
        const std::string text = v.first;
        const unsigned value = v.second;
        CAPTURE(text);
        auto r = parse_config(base + text + "\n", "x.toml");
        REQUIRE_MESSAGE(r.ok(), r.error().message());
        CHECK(r->worker_count == value);
    }
}

TEST_CASE("config: an integer beyond 64 bits is a syntax error, not a wrap-around") {
    const std::string msg =
        error_of(std::string(kMinimal) + "[workers]\ncount = 18446744073709551617\n");
    CHECK(starts_with(msg, "x.toml:6:"));
    CHECK(msg.find("not representable in 64 bits") != std::string::npos);
}

// ---- Log level -------------------------------------------------------------------

TEST_CASE("config: an unknown log level is named") {
    CHECK(error_of(std::string(kMinimal) + "[log]\nlevel = \"verbose\"\n") ==
          "x.toml:6:9: log.level: expected one of \"debug\", \"info\", \"warning\", \"error\", "
          "got \"verbose\"");
    CHECK(starts_with(error_of(std::string(kMinimal) + "[log]\nlevel = \"INFO\"\n"),
                      "x.toml:6:9: log.level: "));
}

// ---- Order -----------------------------------------------------------------------

TEST_CASE("config: schema errors are reported in schema order, not file order") {
    // log.level (line 2) and workers.count (line 4) are both bad, and come before
    // [cache] in the file; cache.dir is first in the schema.
    const std::string msg = error_of(
        "[log]\n"
        "level = \"loud\"\n"
        "[workers]\n"
        "count = 100\n"
        "[cache]\n"
        "dir = \"relative\"\n"
        "[blobs]\n"
        "dir = \"/b\"\n");
    CHECK(starts_with(msg, "x.toml:6:7: cache.dir: "));

    CHECK(starts_with(error_of("[log]\nlevel = \"loud\"\n[workers]\ncount = 100\n"
                               "[cache]\ndir = \"/c\"\n[blobs]\ndir = \"/b\"\n"),
                      "x.toml:4:9: workers.count: "));
}

// ---- Files -----------------------------------------------------------------------

TEST_CASE("config: load_config reads a file and uses its path in messages") {
    TempDir dir;
    const std::string good = dir.write("good.toml", std::string(kMinimal) + "[workers]\ncount = 5\n");
    auto r = load_config(good);
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->worker_count == 5u);
    CHECK(r->cache_dir == "/var/cache/cfs");

    const std::string bad = dir.write("bad.toml", std::string(kMinimal) + "[workers]\ncount = 0\n");
    auto e = load_config(bad);
    REQUIRE(!e.ok());
    CHECK(e.error().errnum == 0);
    CHECK(e.error().message() ==
          bad + ":6:9: workers.count: expected an integer from 1 to 64, got 0");
}

TEST_CASE("config: a missing file is ENOENT and names the path") {
    TempDir dir;
    const std::string path = dir.path() + "/does-not-exist.toml";
    auto r = load_config(path);
    REQUIRE(!r.ok());
    CHECK(r.error().errnum == ENOENT);
    CHECK(r.error().context.find(path) != std::string::npos);
    CHECK(r.error().message() ==
          "opening config file " + path + ": No such file or directory");
}

TEST_CASE("config: a directory is not a config file") {
    TempDir dir;
    auto r = load_config(dir.path());
    REQUIRE(!r.ok());
    CHECK(r.error().errnum == EISDIR);
    CHECK(r.error().context.find(dir.path()) != std::string::npos);
}

TEST_CASE("config: an unreadable file carries EACCES") {
    TempDir dir;
    const std::string path = dir.write("secret.toml", kMinimal);
    REQUIRE(::chmod(path.c_str(), 0) == 0);
    // Root reads files whatever their mode: the load runs as nobody.
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        if (::geteuid() == 0 && (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0))
            ::_exit(100);
        auto r = load_config(path);
        if (r.ok()) ::_exit(101);
        if (r.error().context.find(path) == std::string::npos) ::_exit(102);
        ::_exit(r.error().errnum == EACCES ? 0 : 103);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    // 100: could not become nobody; 101: loaded; 102: path not named; 103: other errno.
    CHECK(WEXITSTATUS(status) == 0);
}

// A FIFO where the config belongs (a reload reads it in the supervisor's event loop)
// must fail at once, not block until someone writes to it.
TEST_CASE("config: a FIFO is not a config file, and loading it does not block") {
    TempDir dir;
    const std::string path = dir.path() + "/fifo.toml";
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::alarm(3);  // blocked in open(): SIGALRM ends the child
        auto r = load_config(path);
        ::_exit(!r.ok() && r.error().errnum == EINVAL &&
                        r.error().message() == "reading config file " + path + ": not a regular file: Invalid argument"
                    ? 0
                    : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK_MESSAGE(!WIFSIGNALED(status), "load_config of a FIFO blocked");
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("config: a garbage file is a syntax error naming the file") {
    TempDir dir;
    using namespace std::string_literals;
    const std::string path = dir.write("garbage.toml", "\x7f" "ELF\x02\x01\x01\x00\x00\xff\xfe"s);
    auto r = load_config(path);
    REQUIRE(!r.ok());
    CHECK(r.error().errnum == 0);
    // toml++ decodes UTF-8 ahead of parsing, so the bad bytes are what it reports.
    CHECK(r.error().message().starts_with(path + ":1:"));
    CHECK(r.error().message().find("invalid utf-8") != std::string::npos);

    const std::string latin1 = dir.write("latin1.toml", "[cache]\ndir = \"/caf\xe9\"\n");
    auto l = load_config(latin1);
    REQUIRE(!l.ok());
    CHECK(l.error().message().starts_with(latin1 + ":2:"));
    CHECK(l.error().message().find("invalid utf-8") != std::string::npos);
}

TEST_CASE("config: an empty file is missing cache.dir") {
    TempDir dir;
    const std::string path = dir.write("empty.toml", "");
    auto r = load_config(path);
    REQUIRE(!r.ok());
    CHECK(r.error().errnum == 0);
    CHECK(r.error().message() ==
          path + ":1:1: missing required key cache.dir: expected an absolute path (there is no "
                 "[cache] table)");
}

TEST_CASE("config: a file over 1 MiB is refused with EFBIG") {
    TempDir dir;
    const std::string path = dir.write("huge.toml", std::string((1u << 20) + 1, '\n'));
    auto r = load_config(path);
    REQUIRE(!r.ok());
    CHECK(r.error().errnum == EFBIG);
    CHECK(r.error().context.find(path) != std::string::npos);

    // Exactly 1 MiB is still read (and here, being blank, lacks cache.dir).
    const std::string limit = dir.write("limit.toml", std::string(1u << 20, '\n'));
    auto l = load_config(limit);
    REQUIRE(!l.ok());
    CHECK(l.error().message().starts_with(limit + ":1:1: missing required key cache.dir"));
}

TEST_CASE("config: [testing] is accepted only in builds with fault injection") {
    const std::string base = "[cache]\ndir = \"/c\"\n[blobs]\ndir = \"/b\"\n";
    auto r = parse_config(base + "[testing]\nfault_file = \"/run/f\"\n", "t.toml");
    if (cfs::kFaultInjectionBuilt) {
        REQUIRE_MESSAGE(r.ok(), r.error().message());
        CHECK(r->fault_file == "/run/f");
        auto missing = parse_config(base + "[testing]\n", "t.toml");
        REQUIRE_FALSE(missing.ok());
        CHECK(missing.error().message().find("missing required key testing.fault_file") != std::string::npos);
    } else {
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message().find("t.toml:5:1: table [testing] is for test builds only") == 0);
    }
    auto plain = parse_config(base, "t.toml");
    REQUIRE(plain.ok());
    CHECK(plain->fault_file.empty());
}

TEST_CASE("config: workers.spares defaults to 1 and is bounded") {
    const std::string base = "[cache]\ndir = \"/c\"\n[blobs]\ndir = \"/b\"\n";
    auto r = parse_config(base, "t.toml");
    REQUIRE(r.ok());
    CHECK(r->spare_count == 1);
    r = parse_config(base + "[workers]\nspares = 0\n", "t.toml");
    REQUIRE(r.ok());
    CHECK(r->spare_count == 0);
    r = parse_config(base + "[workers]\nspares = 9\n", "t.toml");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == "t.toml:6:10: workers.spares: expected an integer from 0 to 8, got 9");
}

TEST_CASE("config: the cache's cull limits default to cachefilesd's 10/7/3 and must rise 0 < stop < cull < run < 100") {
    const std::string base = "[blobs]\ndir = \"/b\"\n[cache]\ndir = \"/c\"\n";
    auto r = parse_config(base, "t.toml");
    REQUIRE(r.ok());
    CHECK(r->cull_limits == cfs::CullLimits{.run = 10, .cull = 7, .stop = 3});
    r = parse_config(base + "cull_below_percent = 40\ncull_until_percent = 50\nrefuse_below_percent = 1\n", "t.toml");
    REQUIRE(r.ok());
    CHECK(r->cull_limits == cfs::CullLimits{.run = 50, .cull = 40, .stop = 1});
    r = parse_config(base + "cull_until_percent = 99\n", "t.toml");
    REQUIRE(r.ok());
    CHECK(r->cull_limits == cfs::CullLimits{.run = 99, .cull = 7, .stop = 3});

    CHECK(error_of(base + "cull_until_percent = 100\n") ==
          "x.toml:5:22: cache.cull_until_percent: expected an integer from 0 to 99, got 100");
    // 0: the kernel would never refuse, and a full disk fails writes with ENOSPC first.
    CHECK(error_of(base + "refuse_below_percent = 0\n") ==
          "x.toml:5:24: cache.refuse_below_percent: expected an integer from 1 to 99, got 0");
    CHECK(error_of(base + "cull_below_percent = \"7%\"\n") ==
          "x.toml:5:22: cache.cull_below_percent: expected an integer from 0 to 99, got a string");
    // One key against a default it may not know it contradicts: the default is named.
    CHECK(error_of(base + "cull_below_percent = 20\n") ==
          "x.toml:5:22: cache.cull_below_percent: expected below cache.cull_until_percent (10, the default), got "
          "20; the limits must rise from refuse_below_percent to cull_below_percent to cull_until_percent");
    CHECK(error_of(base + "refuse_below_percent = 7\n") ==
          "x.toml:5:24: cache.refuse_below_percent: expected below cache.cull_below_percent (7, the default), got "
          "7; the limits must rise from refuse_below_percent to cull_below_percent to cull_until_percent");
    // Both set: the later of the pair in the rising order is blamed.
    CHECK(error_of(base + "cull_until_percent = 5\ncull_below_percent = 6\n") ==
          "x.toml:5:22: cache.cull_until_percent: expected above cache.cull_below_percent (6), got 5; the limits "
          "must rise from refuse_below_percent to cull_below_percent to cull_until_percent");
}

TEST_CASE("config: workers.read_ahead_kib defaults to 65536, is bounded and whole 4 KiB blocks") {
    const std::string base = "[cache]\ndir = \"/c\"\n[blobs]\ndir = \"/b\"\n";
    auto r = parse_config(base, "t.toml");
    REQUIRE(r.ok());
    CHECK(r->read_ahead_kib == 65536);
    CHECK(r->read_ahead_kib == cfs::kDefaultReadAheadKib);
    r = parse_config(base + "[workers]\nread_ahead_kib = 0\n", "t.toml");
    REQUIRE(r.ok());
    CHECK(r->read_ahead_kib == 0);
    r = parse_config(base + "[workers]\nread_ahead_kib = 65536\n", "t.toml");
    REQUIRE(r.ok());
    CHECK(r->read_ahead_kib == 65536);
    CHECK(error_of(base + "[workers]\nread_ahead_kib = 65540\n") ==
          "x.toml:6:18: workers.read_ahead_kib: expected an integer from 0 to 65536, got 65540");
    CHECK(error_of(base + "[workers]\nread_ahead_kib = -4\n") ==
          "x.toml:6:18: workers.read_ahead_kib: expected an integer from 0 to 65536, got -4");
    CHECK(error_of(base + "[workers]\nread_ahead_kib = 1002\n") ==
          "x.toml:6:18: workers.read_ahead_kib: expected a multiple of 4 (whole 4 KiB blocks), got 1002");
    CHECK(error_of(base + "[workers]\nread_ahead_kib = \"4M\"\n") ==
          "x.toml:6:18: workers.read_ahead_kib: expected an integer from 0 to 65536, got a string");
}

TEST_CASE("config: workers.user defaults to cfsupervisor-worker and must be a plain, non-root user name") {
    const std::string base = "[cache]\ndir = \"/c\"\n[blobs]\ndir = \"/b\"\n";
    auto r = parse_config(base, "t.toml");
    REQUIRE(r.ok());
    CHECK(r->worker_user == "cfsupervisor-worker");
    CHECK(r->worker_user == cfs::kDefaultWorkerUser);
    r = parse_config(base + "[workers]\nuser = \"_cfs.worker-2\"\n", "t.toml");
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->worker_user == "_cfs.worker-2");

    const std::string expected =
        "workers.user: expected a user name: 1 to 32 characters of [A-Za-z0-9_.-], not starting with '-' or '.'";
    CHECK(error_of(base + "[workers]\nuser = 65534\n") == "x.toml:6:8: " + expected + ", got an integer");
    CHECK(error_of(base + "[workers]\nuser = \"\"\n") == "x.toml:6:8: " + expected + ", got an empty string");
    CHECK(error_of(base + "[workers]\nuser = \"-x\"\n") == "x.toml:6:8: " + expected + ", got \"-x\"");
    CHECK(error_of(base + "[workers]\nuser = \"a b\"\n") == "x.toml:6:8: " + expected + ", got \"a b\"");
    CHECK(error_of(base + "[workers]\nuser = \"../x\"\n") == "x.toml:6:8: " + expected + ", got \"../x\"");
    CHECK(error_of(base + "[workers]\nuser = \"" + std::string(33, 'u') + "\"\n") ==
          "x.toml:6:8: " + expected + ", got \"" + std::string(33, 'u') + "\"");
    CHECK(error_of(base + "[workers]\nuser = \"root\"\n").starts_with(
        "x.toml:6:8: workers.user: \"root\" would leave workers privileged"));
    // Listed among the known keys.
    CHECK(error_of(base + "[workers]\nusr = \"x\"\n").find("(known keys: count, spares, user, read_ahead_kib)") !=
          std::string::npos);
}

TEST_CASE("config: control.group is optional and must be a plain group name") {
    const std::string base = "[cache]\ndir = \"/c\"\n[blobs]\ndir = \"/b\"\n";
    auto r = parse_config(base, "t.toml");
    REQUIRE(r.ok());
    CHECK(r->control_group.empty());
    r = parse_config(base + "[control]\ngroup = \"cfs-readers\"\n", "t.toml");
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->control_group == "cfs-readers");
    r = parse_config(base + "[control]\ngroup = \"a/b\"\n", "t.toml");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("t.toml:6:9: control.group: expected a group name") == 0);
    r = parse_config(base + "[control]\nsocket = \"/x\"\n", "t.toml");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == "t.toml:6:1: unknown key 'socket' in table [control] (known keys: group)");
}

// ---- [blobs] url -------------------------------------------------------------------

TEST_CASE("config: blobs.url is optional and kept as written") {
    auto none = parse_config(kMinimal, "x.toml");
    REQUIRE(none.ok());
    CHECK(none->blobs.url.empty());
    auto r = parse_config(std::string(kMinimal) + "url = \"http://registry.test:8080/blobs/\"\n", "x.toml");
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->blobs.url == "http://registry.test:8080/blobs/");
}

TEST_CASE("config: a bad blobs.url is named at its value, saying what is wrong") {
    const std::string base(kMinimal);  // url is on line 5
    CHECK(error_of(base + "url = 80\n") ==
          "x.toml:5:7: blobs.url: expected an http:// or https:// URL ending in '/' (a string), got an integer");
    CHECK(error_of(base + "url = \"ftp://h/\"\n") ==
          "x.toml:5:7: blobs.url: expected a URL starting with http:// or https://, got \"ftp://h/\"");
    CHECK(error_of(base + "url = \"http://h/blobs\"\n") ==
          "x.toml:5:7: blobs.url: expected the URL to end in '/' (the blob's name is appended to it), got "
          "\"http://h/blobs\"");
    CHECK(error_of(base + "url = \"http://user:secret@h/\"\n") ==
          "x.toml:5:7: blobs.url: expected no user or password in the URL (it would show in logs and status), got "
          "\"http://user:secret@h/\"");
    CHECK(error_of(base + "url = \"http://h:99999/\"\n") ==
          "x.toml:5:7: blobs.url: expected a port number from 1 to 65535, got \"http://h:99999/\"");
    CHECK(starts_with(error_of(base + "url = \"http://h/" + std::string(600, 'a') + "/\"\n"),
                      "x.toml:5:7: blobs.url: expected a URL of at most 512 bytes, got 610 bytes"));
    // Brackets hold an IPv6 address, not any of its characters: curl would refuse
    // these at every fetch.
    for (const char* host : {"[1.2.3.4]", "[beef]", "[::1::2]"})
        CHECK(error_of(base + "url = \"http://" + host + "/\"\n") ==
              fmt::format("x.toml:5:7: blobs.url: expected an IPv6 address between '[' and ']', got \"http://{}/\"",
                          host));
    auto v6 = parse_config(base + "url = \"http://[fd00::1]:8080/b/\"\n", "x.toml");
    CHECK_MESSAGE(v6.ok(), v6.error().message());
}

TEST_CASE("config: cache.dir must leave room in the kernel's one-page command") {
    auto at_limit = parse_config("[cache]\ndir = \"/" + std::string(4090, 'c') + "\"\n[blobs]\ndir = \"/b\"\n", "x.toml");
    CHECK_MESSAGE(at_limit.ok(), at_limit.error().message());
    CHECK(error_of("[cache]\ndir = \"/" + std::string(4091, 'c') + "\"\n[blobs]\ndir = \"/b\"\n") ==
          "x.toml:2:7: cache.dir: expected a path of at most 4091 bytes, got 4092 bytes");
}

TEST_CASE("config: blobs.credentials is a path, and only with blobs.url") {
    const std::string base(kMinimal);
    auto r = parse_config(base + "url = \"http://r.test/v2/a/blobs/\"\ncredentials = \"/etc/cfsupervisor/creds\"\n",
                          "x.toml");
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    CHECK(r->blobs.credentials_file == "/etc/cfsupervisor/creds");
    CHECK(error_of(base + "credentials = \"/etc/cfsupervisor/creds\"\n") ==
          "x.toml:5:15: blobs.credentials: only means something with blobs.url (credentials for the blob server); "
          "set blobs.url or remove it");
    CHECK(starts_with(error_of(base + "url = \"http://r.test/b/\"\ncredentials = \"creds\"\n"),
                      "x.toml:6:15: blobs.credentials: expected an absolute path"));
}

TEST_CASE("config: blobs.allowed_origins lists origins a remote worker may also contact, only with blobs.url") {
    const std::string base = std::string(kMinimal) + "url = \"http://r.test:5000/v2/a/blobs/\"\n";  // line 5
    auto none = parse_config(base, "x.toml");
    REQUIRE(none.ok());
    CHECK(none->blobs.allowed_origins.empty());
    auto r = parse_config(base + "allowed_origins = [\"http://127.0.0.2:5001\", \"https://Store.test/\", "
                                 "\"http://[fd00::1]:81\"]\n",
                          "x.toml");
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    // Kept as scheme://host:port, the port spelt out.
    CHECK(r->blobs.allowed_origins ==
          std::vector<std::string>{"http://127.0.0.2:5001", "https://Store.test:443", "http://[fd00::1]:81"});

    CHECK(error_of(std::string(kMinimal) + "allowed_origins = [\"http://a.test\"]\n") ==
          "x.toml:5:19: blobs.allowed_origins: only means something with blobs.url (hosts a remote worker may contact "
          "besides it); set blobs.url or remove it");
    CHECK(error_of(base + "allowed_origins = \"http://a.test\"\n") ==
          "x.toml:6:19: blobs.allowed_origins: expected an array of origins, \"http://host[:port]\" or "
          "\"https://host[:port]\", got a string");
    CHECK(error_of(base + "allowed_origins = [1]\n") ==
          "x.toml:6:20: blobs.allowed_origins: expected an array of origins, \"http://host[:port]\" or "
          "\"https://host[:port]\", got an integer in it");
    CHECK(error_of(base + "allowed_origins = [\"http://a.test/token\"]\n") ==
          "x.toml:6:20: blobs.allowed_origins: expected an origin, scheme://host[:port], with no path, got "
          "\"http://a.test/token\"");
    CHECK(error_of(base + "allowed_origins = [\"http://u:p@a.test\"]\n") ==
          "x.toml:6:20: blobs.allowed_origins: expected no user or password in the URL (it would show in logs and "
          "status), got \"http://u:p@a.test\"");
    CHECK(error_of(base + "allowed_origins = [\"ftp://a.test\"]\n") ==
          "x.toml:6:20: blobs.allowed_origins: expected a URL starting with http:// or https://, got \"ftp://a.test\"");
    CHECK(error_of(base + "allowed_origins = [\"http://a\", \"http://b\", \"http://c\", \"http://d\", \"http://e\"]\n") ==
          "x.toml:6:19: blobs.allowed_origins: expected at most 4 origins, got 5");
}

// ---- [[volume]] ---------------------------------------------------------------------

TEST_CASE("config: [[volume]] tables give volumes stores of their own, in file order") {
    auto r = parse_config(std::string(kMinimal) +
                              "[[volume]]\n"
                              "name = \"img_a\"\n"
                              "dir = \"/srv/a\"\n"
                              "[[volume]]\n"
                              "name = \"sha256:ab.c@d+e-f\"\n"
                              "url = \"https://r.test/v2/lib/b/blobs/\"\n"
                              "credentials = \"/etc/cfsupervisor/b\"\n"
                              "allowed_origins = [\"https://auth.test\"]\n"
                              "[[volume]]\n"
                              "name = \"c\"\n"
                              "dir = \"/srv/c\"\n"
                              "url = \"http://c.test/\"\n",
                          "x.toml");
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    REQUIRE(r->volumes.size() == 3);
    CHECK(r->volumes[0] == cfs::VolumeConfig{"img_a", {"/srv/a", "", "", {}}});
    CHECK(r->volumes[0].volume_key() == "erofs,img_a");
    CHECK(r->volumes[1] == cfs::VolumeConfig{"sha256:ab.c@d+e-f",
                                        {"", "https://r.test/v2/lib/b/blobs/", "/etc/cfsupervisor/b",
                                         {"https://auth.test:443"}}});
    CHECK(r->volumes[2] == cfs::VolumeConfig{"c", {"/srv/c", "http://c.test/", "", {}}});
    // [blobs] stays as it was: local only.
    CHECK(r->blobs == cfs::BlobStoreConfig{"/var/lib/cfs/blobs", "", "", {}});
    CHECK(r->any_remote());
    auto local = parse_config(std::string(kMinimal) + "[[volume]]\nname = \"a\"\ndir = \"/srv/a\"\n", "x.toml");
    REQUIRE(local.ok());
    CHECK_FALSE(local->any_remote());
    auto none = parse_config(kMinimal, "x.toml");
    REQUIRE(none.ok());
    CHECK(none->volumes.empty());
}

TEST_CASE("config: a bad [[volume]] is named at the line and key at fault") {
    const std::string base(kMinimal);  // 4 lines
    CHECK(error_of(base + "[[volume]]\ndir = \"/srv/a\"\n") ==
          "x.toml:5:1: missing required key volume.name: expected the erofs fsid or domain_id its images are mounted "
          "with: 1 to 255 characters of [A-Za-z0-9_.:@+-]");
    CHECK(error_of(base + "[[volume]]\nname = \"a,b\"\ndir = \"/srv/a\"\n") ==
          "x.toml:6:8: volume.name: expected the erofs fsid or domain_id its images are mounted with: 1 to 255 "
          "characters of [A-Za-z0-9_.:@+-], got \"a,b\"");
    CHECK(starts_with(error_of(base + "[[volume]]\nname = 7\n"), "x.toml:6:8: volume.name: expected the erofs fsid"));
    CHECK(starts_with(error_of(base + "[[volume]]\nname = \"" + std::string(256, 'n') + "\"\n"),
                      "x.toml:6:8: volume.name: expected the erofs fsid"));
    CHECK(error_of(base + "[[volume]]\nname = \"a\"\n") ==
          "x.toml:5:1: [[volume]] \"a\": expected dir, url or both (where its blobs come from)");
    CHECK(error_of(base + "[[volume]]\nname = \"a\"\ndir = \"/x\"\n[[volume]]\nname = \"a\"\nurl = \"http://h/\"\n") ==
          "x.toml:9:8: volume.name: \"a\" is named by an earlier [[volume]] too; each volume has one store");
    CHECK(error_of(base + "[[volume]]\nname = \"a\"\ndir = \"rel\"\n") ==
          "x.toml:7:7: volume.dir: expected an absolute path (starting with '/'), got \"rel\"");
    CHECK(error_of(base + "[[volume]]\nname = \"a\"\nurl = \"http://h/x\"\n") ==
          "x.toml:7:7: volume.url: expected the URL to end in '/' (the blob's name is appended to it), got "
          "\"http://h/x\"");
    CHECK(error_of(base + "[[volume]]\nname = \"a\"\ndir = \"/x\"\ncredentials = \"/c\"\n") ==
          "x.toml:8:15: volume.credentials: only means something with volume.url (credentials for the blob server); "
          "set volume.url or remove it");
    CHECK(error_of(base + "[[volume]]\nname = \"a\"\ndir = \"/x\"\nallowed_origins = [\"http://o\"]\n") ==
          "x.toml:8:19: volume.allowed_origins: only means something with volume.url (hosts a remote worker may "
          "contact besides it); set volume.url or remove it");
    CHECK(starts_with(error_of(base + "[[volume]]\nname = \"a\"\ndir = \"/x\"\nsize = 3\n"),
                      "x.toml:8:1: unknown key 'size' in table [volume] (known keys: name, dir, url, credentials, "
                      "allowed_origins)"));
    CHECK(error_of(base + "[volume]\nname = \"a\"\n") ==
          "x.toml:5:1: volume: expected tables written [[volume]], one per volume, got a table");
    std::string many = base;
    for (int i = 0; i <= 32; ++i) many += fmt::format("[[volume]]\nname = \"v{}\"\ndir = \"/x\"\n", i);
    CHECK(error_of(many) == "x.toml:5:1: volume: expected at most 32 [[volume]] tables, got 33");
}
