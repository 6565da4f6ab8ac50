// Digest verification of remote blobs named "sha256:<hex>" (worker/verifying_backend.h),
// over an in-memory backend that counts what is fetched. Digests are NIST's SHA-256
// test vectors, so the code under test does not compute its own expectations.
#include "tests/unit/blob_reads.h"
#include "worker/verifying_backend.h"
#include "worker/whole_blob_pool.h"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <vector>

using namespace cfs;

namespace {

const std::string kAbcDigest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
// One million 'a's.
const std::string kMillionADigest = "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
const std::string kWrongDigest = "sha256:" + std::string(64, '0');

struct Fetches {
    unsigned reads = 0;
    std::uint64_t bytes = 0;
    unsigned fail_from = 0;  // reads from this one on fail (0: none)
};

class MemoryBlob final : public worker::BlobSource {
public:
    MemoryBlob(std::string data, Fetches& f) : data_(std::move(data)), f_(f) {}
    std::uint64_t size() const override { return data_.size(); }
    Result<std::size_t> read_at(std::span<std::byte> buffer, std::uint64_t offset) override {
        ++f_.reads;
        if (f_.fail_from != 0 && f_.reads >= f_.fail_from) return sys_error(ECONNRESET, "the server went away");
        const std::size_t n = testing::read_from(data_, buffer, offset);
        f_.bytes += n;
        return n;
    }

private:
    std::string data_;
    Fetches& f_;
};

class MemoryBackend final : public worker::BlobBackend {
public:
    std::map<std::string, std::string, std::less<>> blobs;
    Fetches fetches;
    std::vector<std::uint64_t> sizes;  // open_with_size's
    Result<std::unique_ptr<worker::BlobSource>> open(std::string_view name) override {
        auto it = blobs.find(name);
        if (it == blobs.end()) return sys_error(ENOENT, "no such blob");
        return std::unique_ptr<worker::BlobSource>(std::make_unique<MemoryBlob>(it->second, fetches));
    }
    Result<std::unique_ptr<worker::BlobSource>> open_with_size(std::string_view name, std::uint64_t size) override {
        sizes.push_back(size);
        return open(name);
    }
};

using testing::read_range;

}  // namespace

TEST_CASE("verify: only names of the form sha256:<64 lowercase hex> promise a digest") {
    auto d = worker::digest_from_name(kAbcDigest);
    REQUIRE(d);
    CHECK((*d)[0] == 0xba);
    CHECK((*d)[31] == 0xad);
    for (const std::string& bad : {std::string("img_a"), std::string("sha256:abc"), kAbcDigest + "0",
                                  std::string("sha512:") + std::string(64, 'a'),
                                  std::string("sha256:") + std::string(63, 'a') + "G",
                                  std::string("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD")}) {
        CAPTURE(bad);
        CHECK_FALSE(worker::digest_from_name(bad));
    }
}

TEST_CASE("verify: a small blob is checked whole at OPEN and then served from memory") {
    MemoryBackend inner;
    inner.blobs[kAbcDigest] = "abc";
    inner.blobs[kWrongDigest] = "abc";
    inner.blobs["plain"] = "anything";
    worker::VerifyingBackend backend(inner);
    auto ok = backend.open(kAbcDigest);
    REQUIRE_MESSAGE(ok, ok.error().message());
    const unsigned fetched_at_open = inner.fetches.reads;
    CHECK(read_range(**ok, 1, 10) == "bc");
    CHECK(inner.fetches.reads == fetched_at_open);  // from memory

    auto bad = backend.open(kWrongDigest);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().errnum == EIO);
    CHECK(bad.error().message().find("blob " + kWrongDigest + " failed verification: its bytes hash to " +
                                     kAbcDigest) != std::string::npos);

    // Not a digest name: not checked, and passed through as it is.
    auto plain = backend.open("plain");
    REQUIRE(plain);
    CHECK(read_range(**plain, 0, 100) == "anything");
    auto missing = backend.open("sha256:" + std::string(64, '1'));
    REQUIRE_FALSE(missing);
    CHECK(missing.error().errnum == ENOENT);
}

TEST_CASE("verify: a blob opened with its size known is checked the same way, the size passed on") {
    MemoryBackend inner;
    inner.blobs[kAbcDigest] = "abc";
    inner.blobs[kWrongDigest] = "abc";
    worker::VerifyingBackend backend(inner);
    auto ok = backend.open_with_size(kAbcDigest, 3);
    REQUIRE_MESSAGE(ok, ok.error().message());
    CHECK(read_range(**ok, 0, 10) == "abc");
    auto bad = backend.open_with_size(kWrongDigest, 3);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().errnum == EIO);
    CHECK(bad.error().message().find("failed verification") != std::string::npos);
    CHECK(inner.sizes == std::vector<std::uint64_t>{3, 3});
}

TEST_CASE("verify: small blobs share a memory budget; one that gave its bytes up is fetched and checked again") {
    MemoryBackend inner;
    inner.blobs[kAbcDigest] = "abc";
    worker::WholeBlobPool pool(6);  // room for two copies of "abc"
    worker::VerifyingBackend backend(inner);
    backend.share_whole_blob_pool(pool);
    auto a = backend.open(kAbcDigest);
    auto b = backend.open(kAbcDigest);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(pool.held() == 6);
    CHECK(read_range(**a, 0, 3) == "abc");  // a is now the most recently read
    auto c = backend.open(kAbcDigest);
    REQUIRE(c);
    CHECK(pool.held() == 6);  // b, read least recently, made room
    const unsigned fetched = inner.fetches.reads;
    CHECK(read_range(**a, 1, 2) == "bc");
    CHECK(read_range(**c, 0, 3) == "abc");
    CHECK(inner.fetches.reads == fetched);  // both from memory
    CHECK(read_range(**b, 0, 3) == "abc");
    CHECK(inner.fetches.reads == fetched + 1);  // fetched whole again, which made a give its bytes up
    CHECK(pool.held() == 6);
    CHECK(read_range(**c, 0, 3) == "abc");
    CHECK(inner.fetches.reads == fetched + 1);
    (*b).reset();
    CHECK(pool.held() == 3);
    (*a).reset();
    (*c).reset();
    CHECK(pool.held() == 0);
}

namespace {
// A blob whose bytes the test changes after it was opened: a server whose copy changed.
class ChangingBlob final : public worker::BlobSource {
public:
    explicit ChangingBlob(const std::string& data) : data_(data) {}
    std::uint64_t size() const override { return data_.size(); }
    Result<std::size_t> read_at(std::span<std::byte> buffer, std::uint64_t offset) override {
        return testing::read_from(data_, buffer, offset);
    }

private:
    const std::string& data_;
};
}  // namespace

TEST_CASE("verify: a small blob fetched again that no longer matches fails the read with EIO, and is counted") {
    std::string served = "abc";
    unsigned mismatches = 0;
    worker::WholeBlobPool pool(3);
    auto first = pool.hold(std::make_unique<ChangingBlob>(served), kAbcDigest, *worker::digest_from_name(kAbcDigest),
                           [&mismatches] { ++mismatches; });
    REQUIRE(first);
    std::string other = "abc";
    auto second = pool.hold(std::make_unique<ChangingBlob>(other), kAbcDigest, *worker::digest_from_name(kAbcDigest),
                            [&mismatches] { ++mismatches; });
    REQUIRE(second);  // first gave its bytes up
    served = "abd";
    int err = 0;
    const std::string failed = read_range(**first, 0, 3, &err);
    CHECK(err == EIO);
    CHECK(failed.find("blob " + kAbcDigest + " failed verification") != std::string::npos);
    CHECK(mismatches == 1);
    CHECK(read_range(**second, 0, 3) == "abc");  // still held, never fetched again
    served = "abc";  // repaired on the server: not remembered as bad
    CHECK(read_range(**first, 0, 3) == "abc");
    CHECK(mismatches == 1);
}

TEST_CASE("verify: a large blob read in order is checked as its last range arrives, fetched once") {
    MemoryBackend inner;
    const std::string data(1'000'000, 'a');
    inner.blobs[kMillionADigest] = data;
    worker::VerifyingBackend backend(inner, 65536);
    auto blob = backend.open(kMillionADigest);
    REQUIRE(blob);
    std::string got;
    for (std::uint64_t pos = 0; pos < data.size(); pos += 300'000) got += read_range(**blob, pos, 300'000);
    CHECK(got == data);
    CHECK(inner.fetches.bytes == data.size());
    // Verified: later reads pass through.
    CHECK(read_range(**blob, 10, 5) == "aaaaa");
}

TEST_CASE("verify: a large blob read out of order is checked once complete, re-fetching the out-of-order part once") {
    MemoryBackend inner;
    const std::string data(1'000'000, 'a');
    inner.blobs[kMillionADigest] = data;
    worker::VerifyingBackend backend(inner, 65536);
    auto blob = backend.open(kMillionADigest);
    REQUIRE(blob);
    CHECK(read_range(**blob, 600'000, 400'000).size() == 400'000);
    CHECK(read_range(**blob, 0, 200'000).size() == 200'000);
    CHECK(read_range(**blob, 100'000, 300'000).size() == 300'000);  // overlaps, still short of complete
    CHECK(inner.fetches.bytes == 900'000);
    CHECK(read_range(**blob, 400'000, 200'000).size() == 200'000);  // completes it
    // Readers fetched 1,100,000 (100,000 twice, overlapping); the hash advanced in
    // order to 600,000, so [600000, 1000000), first fetched out of order, is fetched
    // again to finish it.
    CHECK(inner.fetches.bytes == 1'100'000 + 400'000);
}

TEST_CASE("verify: a large blob that does not match fails the completing READ and every later one") {
    MemoryBackend inner;
    inner.blobs[kWrongDigest] = std::string(1'000'000, 'a');
    worker::VerifyingBackend backend(inner, 65536);
    auto blob = backend.open(kWrongDigest);
    REQUIRE(blob);
    CHECK(read_range(**blob, 0, 500'000).size() == 500'000);
    int err = 0;
    const std::string last = read_range(**blob, 500'000, 500'000, &err);
    CHECK(err == EIO);
    CHECK(last.find("failed verification: its bytes hash to " + kMillionADigest) != std::string::npos);
    err = 0;
    CHECK(read_range(**blob, 0, 10, &err).find("failed verification earlier") != std::string::npos);
    CHECK(err == EIO);
}

// The check's second fetch of what came out of order can fail like any fetch: that
// is no verdict on the blob, and the next READ carries the check on.
TEST_CASE("verify: a large blob whose check could not fetch it again is checked at the next READ, not failed") {
    MemoryBackend inner;
    inner.blobs[kMillionADigest] = std::string(1'000'000, 'a');
    worker::VerifyingBackend backend(inner, 65536);
    auto blob = backend.open(kMillionADigest);
    REQUIRE(blob);
    CHECK(read_range(**blob, 600'000, 400'000).size() == 400'000);
    // The completing READ's own fetch succeeds, the check's fetch of [600000, 1000000)
    // after it fails.
    inner.fetches.fail_from = inner.fetches.reads + 2;
    int err = 0;
    const std::string completing = read_range(**blob, 0, 600'000, &err);
    CHECK(err == 0);
    CHECK(completing.size() == 600'000);
    CHECK(completing.find_first_not_of('a') == std::string::npos);
    inner.fetches.fail_from = 0;
    const auto before = inner.fetches.bytes;
    CHECK(read_range(**blob, 0, 10, &err) == std::string(10, 'a'));
    CHECK(err == 0);
    // That READ finished the check: its 10 bytes, and the 400,000 fetched again.
    CHECK(inner.fetches.bytes == before + 10 + 400'000);
    // Verified: later reads pass through, with no more fetches for the check.
    CHECK(read_range(**blob, 20, 10) == std::string(10, 'a'));
    CHECK(inner.fetches.bytes == before + 10 + 400'000 + 10);
}
