#include "common/blob_name.h"

#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <string_view>

using cfs::validate_blob_name;

TEST_CASE("blob name: plain file names are accepted") {
    for (std::string_view name : {"a", "blob.img", "erofs-image_01", "...", ".hidden", "a..b", "..a",
                                  "with space", "\x80\xff utf8-ish \xc3\xa9", "~", "a\\b", "-"}) {
        CAPTURE(name);
        auto r = validate_blob_name(name);
        CHECK_MESSAGE(r.ok(), r.error().message());
    }
}

TEST_CASE("blob name: 255 bytes is accepted, 256 is ENAMETOOLONG") {
    CHECK(validate_blob_name(std::string(255, 'n')).ok());
    auto r = validate_blob_name(std::string(256, 'n'));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().errnum == ENAMETOOLONG);
    // Length is checked first, whatever else is wrong with the name.
    auto slashy = validate_blob_name(std::string(300, '/'));
    REQUIRE_FALSE(slashy.ok());
    CHECK(slashy.error().errnum == ENAMETOOLONG);
}

TEST_CASE("blob name: each rejection with EINVAL") {
    struct Case {
        std::string name;
        std::string why;
    };
    const Case cases[] = {
        {"", "empty"},
        {".", "directory reference"},
        {"..", "directory reference"},
        {"a/b", "'/'"},
        {"/", "'/'"},
        {"/etc/passwd", "'/'"},
        {"../x", "'/'"},
        {"x/", "'/'"},
        {std::string("a\0b", 3), "NUL"},
        {std::string("\0", 1), "NUL"},
        {"a\nb", "control character"},
        {"\x01", "control character"},
        {"tab\there", "control character"},
        {"\x1f", "control character"},
        {"del\x7f", "control character"},
        {"esc\x1b[0m", "control character"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        auto r = validate_blob_name(c.name);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().errnum == EINVAL);
        CHECK(r.error().context.find(c.why) != std::string::npos);
    }
}
