// A shared library loaded at run time (dlopen) and its symbols looked up into a
// table of function pointers: what worker/curl_api.cc and worker/crypto_api.cc both
// need. The library stays loaded for the life of the process (the tables point into
// it and live in function-local statics), so there is no dlclose.
#pragma once

#include <dlfcn.h>

#include <string>
#include <string_view>

#include "common/result.h"

namespace cfs::worker {

class DlLibrary {
public:
    // `purpose` says why it is loaded, for the error ("for blobs.url (Debian: the
    // libcurl4 package)").
    [[nodiscard]] static Result<DlLibrary> open(const char* soname, std::string_view purpose);

    // Looks `name` up into `out`; the first name not found is remembered for done().
    template <class F>
    void resolve(const char* name, F& out) {
        out = reinterpret_cast<F>(::dlsym(handle_, name));
        if (out == nullptr && missing_.empty()) missing_ = name;
    }

    // An Error naming the library and the first symbol it lacks, if any.
    [[nodiscard]] Status done() const;

private:
    DlLibrary(void* handle, const char* soname) : handle_(handle), soname_(soname) {}
    void* handle_;
    const char* soname_;
    std::string missing_;
};

}  // namespace cfs::worker
