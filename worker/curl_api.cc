#include "worker/curl_api.h"

#include "worker/dl_library.h"

namespace cfs::worker {
namespace {

Result<CurlApi> load_once() {
    auto library = DlLibrary::open(kCurlLibrary, "for blobs.url (Debian: the libcurl4 package)");
    if (!library) return std::move(library).error();
    CurlApi api{};
    library->resolve("curl_global_init", api.global_init);
    library->resolve("curl_easy_init", api.easy_init);
    library->resolve("curl_easy_cleanup", api.easy_cleanup);
    library->resolve("curl_easy_setopt", api.easy_setopt);
    library->resolve("curl_easy_perform", api.easy_perform);
    library->resolve("curl_easy_getinfo", api.easy_getinfo);
    library->resolve("curl_easy_strerror", api.easy_strerror);
    library->resolve("curl_easy_escape", api.easy_escape);
    library->resolve("curl_free", api.free);
    library->resolve("curl_slist_append", api.slist_append);
    library->resolve("curl_slist_free_all", api.slist_free_all);
    if (auto complete = library->done(); !complete) return std::move(complete).error();
    return api;
}

}  // namespace

Result<const CurlApi*> load_curl() {
    static const Result<CurlApi> loaded = load_once();
    if (!loaded) return loaded.error();
    return &loaded.value();
}

}  // namespace cfs::worker
