// libcurl, loaded at run time (dlopen) by workers that fetch remote blobs only.
//
// Why not linked: libcurl brings some 30 more shared libraries (OpenSSL, Kerberos,
// LDAP, SSH, ...). Linked, every worker would map and relocate them at start, remote
// or not: about 15 ms more per worker start natively (39 libraries instead of 9;
// README, "Remote blobs"), more under TCG, on the path of every failover, and code
// in the address space of a process that never uses it. Loaded here, before the
// sandbox (which allows no file to be opened and no executable mapping), only where
// blobs.url asks for it.
#pragma once

#include <curl/curl.h>

#include "common/result.h"

namespace cfs::worker {

struct CurlApi {
    CURLcode (*global_init)(long flags);
    CURL* (*easy_init)();
    void (*easy_cleanup)(CURL* easy);
    CURLcode (*easy_setopt)(CURL* easy, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL* easy);
    CURLcode (*easy_getinfo)(CURL* easy, CURLINFO info, ...);
    const char* (*easy_strerror)(CURLcode code);
    char* (*easy_escape)(CURL* easy, const char* text, int length);
    void (*free)(void* p);
    curl_slist* (*slist_append)(curl_slist* list, const char* text);
    void (*slist_free_all)(curl_slist* list);
};

// Debian's libcurl4 (OpenSSL flavour) soname.
inline constexpr const char* kCurlLibrary = "libcurl.so.4";

// Loads the library once (later calls return the same table); an Error says which
// library or symbol is missing.
[[nodiscard]] Result<const CurlApi*> load_curl();

}  // namespace cfs::worker
