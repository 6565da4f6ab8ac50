// The SHA-256 of OpenSSL's libcrypto, loaded at run time (dlopen) by remote workers
// only, for the same reason as libcurl (worker/curl_api.h): linked, every worker
// would load and relocate it at start (6 ms more per start natively here, 8-11 ms
// instead of 2-4 ms), remote or not. Remote workers load it before their sandbox; it
// is the libcrypto libcurl already uses.
#pragma once

#include <openssl/evp.h>

#include "common/result.h"

namespace cfs::worker {

struct CryptoApi {
    EVP_MD_CTX* (*md_ctx_new)();
    void (*md_ctx_free)(EVP_MD_CTX* ctx);
    const EVP_MD* (*sha256)();
    int (*digest_init_ex)(EVP_MD_CTX* ctx, const EVP_MD* type, ENGINE* impl);
    int (*digest_update)(EVP_MD_CTX* ctx, const void* data, size_t count);
    int (*digest_final_ex)(EVP_MD_CTX* ctx, unsigned char* md, unsigned int* size);
};

// Debian 12's libssl3.
inline constexpr const char* kCryptoLibrary = "libcrypto.so.3";

// Loads it once; an Error names the library or symbol missing.
[[nodiscard]] Result<const CryptoApi*> load_crypto();

}  // namespace cfs::worker
