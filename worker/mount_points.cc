#include "worker/mount_points.h"

#include <algorithm>

namespace cfs::worker {
namespace {

// The kernel's escapes in mountinfo (show_mountinfo, mangle): a backslash and three
// octal digits stand for one byte.
std::string unescape(std::string_view field) {
    std::string out;
    out.reserve(field.size());
    for (std::size_t i = 0; i < field.size(); ++i) {
        const auto is_octal = [](char c) { return c >= '0' && c <= '7'; };
        if (field[i] == '\\' && i + 3 < field.size() && is_octal(field[i + 1]) && is_octal(field[i + 2]) &&
            is_octal(field[i + 3])) {
            out.push_back(static_cast<char>(((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) |
                                            (field[i + 3] - '0')));
            i += 3;
        } else {
            out.push_back(field[i]);
        }
    }
    return out;
}

// Field `index` (from 0) of a line of space-separated fields; empty if it has fewer.
std::string_view field_of(std::string_view line, std::size_t index) {
    for (std::size_t i = 0; i < index; ++i) {
        const auto space = line.find(' ');
        if (space == std::string_view::npos) return {};
        line.remove_prefix(space + 1);
    }
    return line.substr(0, line.find(' '));
}

}  // namespace

std::vector<std::string> mount_points_below_root(std::string_view mountinfo) {
    std::vector<std::string> points;
    while (!mountinfo.empty()) {
        const auto end = mountinfo.find('\n');
        const std::string_view line = mountinfo.substr(0, end);
        mountinfo.remove_prefix(end == std::string_view::npos ? mountinfo.size() : end + 1);
        // ID, parent ID, major:minor, root within its filesystem, then the mount point.
        const std::string_view field = field_of(line, 4);
        if (field.empty()) continue;
        std::string point = unescape(field);
        if (point != "/") points.push_back(std::move(point));
    }
    std::sort(points.begin(), points.end(), [](const std::string& a, const std::string& b) {
        return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
    points.erase(std::unique(points.begin(), points.end()), points.end());
    return points;
}

}  // namespace cfs::worker
