#include "worker/curl_api.h"

#include <dlfcn.h>

#include <fmt/format.h>

namespace cfs::worker {
namespace {

template <class F>
bool resolve(void* library, const char* name, F& out, std::string& missing) {
    out = reinterpret_cast<F>(::dlsym(library, name));
    if (out == nullptr && missing.empty()) missing = name;
    return out != nullptr;
}

Result<CurlApi> load_once() {
    void* library = ::dlopen(kCurlLibrary, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
        const char* why = ::dlerror();
        return logic_error(fmt::format("loading {} for blobs.url (Debian: the libcurl4 package): {}", kCurlLibrary,
                                       why != nullptr ? why : "unknown error"));
    }
    CurlApi api{};
    std::string missing;
    resolve(library, "curl_global_init", api.global_init, missing);
    resolve(library, "curl_easy_init", api.easy_init, missing);
    resolve(library, "curl_easy_cleanup", api.easy_cleanup, missing);
    resolve(library, "curl_easy_setopt", api.easy_setopt, missing);
    resolve(library, "curl_easy_perform", api.easy_perform, missing);
    resolve(library, "curl_easy_getinfo", api.easy_getinfo, missing);
    resolve(library, "curl_easy_strerror", api.easy_strerror, missing);
    resolve(library, "curl_easy_escape", api.easy_escape, missing);
    resolve(library, "curl_free", api.free, missing);
    resolve(library, "curl_slist_append", api.slist_append, missing);
    resolve(library, "curl_slist_free_all", api.slist_free_all, missing);
    // The library stays loaded for the life of the process.
    if (!missing.empty()) return logic_error(fmt::format("{} has no symbol {}", kCurlLibrary, missing));
    return api;
}

}  // namespace

Result<const CurlApi*> load_curl() {
    static const Result<CurlApi> loaded = load_once();
    if (!loaded) return loaded.error();
    return &loaded.value();
}

}  // namespace cfs::worker
