#include "worker/dl_library.h"

#include <fmt/format.h>

namespace cfs::worker {

Result<DlLibrary> DlLibrary::open(const char* soname, std::string_view purpose) {
    void* handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        const char* why = ::dlerror();
        return logic_error(fmt::format("loading {} {}: {}", soname, purpose, why != nullptr ? why : "unknown error"));
    }
    return DlLibrary(handle, soname);
}

Status DlLibrary::done() const {
    if (!missing_.empty()) return logic_error(fmt::format("{} has no symbol {}", soname_, missing_));
    return {};
}

}  // namespace cfs::worker
