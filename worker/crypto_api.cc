#include "worker/crypto_api.h"

#include "worker/dl_library.h"

namespace cfs::worker {
namespace {

Result<CryptoApi> load_once() {
    auto library = DlLibrary::open(kCryptoLibrary, "for blob digests");
    if (!library) return std::move(library).error();
    CryptoApi api{};
    library->resolve("EVP_MD_CTX_new", api.md_ctx_new);
    library->resolve("EVP_MD_CTX_free", api.md_ctx_free);
    library->resolve("EVP_sha256", api.sha256);
    library->resolve("EVP_DigestInit_ex", api.digest_init_ex);
    library->resolve("EVP_DigestUpdate", api.digest_update);
    library->resolve("EVP_DigestFinal_ex", api.digest_final_ex);
    if (auto complete = library->done(); !complete) return std::move(complete).error();
    return api;
}

}  // namespace

Result<const CryptoApi*> load_crypto() {
    static const Result<CryptoApi> loaded = load_once();
    if (!loaded) return loaded.error();
    return &loaded.value();
}

}  // namespace cfs::worker
