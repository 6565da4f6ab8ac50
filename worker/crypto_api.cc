#include "worker/crypto_api.h"

#include <dlfcn.h>

#include <string>

#include <fmt/format.h>

namespace cfs::worker {
namespace {

template <class F>
void resolve(void* library, const char* name, F& out, std::string& missing) {
    out = reinterpret_cast<F>(::dlsym(library, name));
    if (out == nullptr && missing.empty()) missing = name;
}

Result<CryptoApi> load_once() {
    void* library = ::dlopen(kCryptoLibrary, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
        const char* why = ::dlerror();
        return logic_error(fmt::format("loading {} for blob digests: {}", kCryptoLibrary,
                                       why != nullptr ? why : "unknown error"));
    }
    CryptoApi api{};
    std::string missing;
    resolve(library, "EVP_MD_CTX_new", api.md_ctx_new, missing);
    resolve(library, "EVP_MD_CTX_free", api.md_ctx_free, missing);
    resolve(library, "EVP_sha256", api.sha256, missing);
    resolve(library, "EVP_DigestInit_ex", api.digest_init_ex, missing);
    resolve(library, "EVP_DigestUpdate", api.digest_update, missing);
    resolve(library, "EVP_DigestFinal_ex", api.digest_final_ex, missing);
    if (!missing.empty()) return logic_error(fmt::format("{} has no symbol {}", kCryptoLibrary, missing));
    return api;
}

}  // namespace

Result<const CryptoApi*> load_crypto() {
    static const Result<CryptoApi> loaded = load_once();
    if (!loaded) return loaded.error();
    return &loaded.value();
}

}  // namespace cfs::worker
