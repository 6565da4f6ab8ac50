#include "common/blob_name.h"

#include <cerrno>

namespace cfs {

Status validate_blob_name(std::string_view name) {
    if (name.empty()) return sys_error(EINVAL, "blob name is empty");
    if (name.size() > kMaxBlobNameLength)
        return sys_error(ENAMETOOLONG, "blob name is longer than 255 bytes");
    if (name == "." || name == "..") return sys_error(EINVAL, "blob name is a directory reference");
    for (char c : name) {
        if (c == '/') return sys_error(EINVAL, "blob name contains '/'");
        if (c == '\0') return sys_error(EINVAL, "blob name contains a NUL byte");
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return sys_error(EINVAL, "blob name contains a control character");
    }
    return {};
}

}  // namespace cfs
