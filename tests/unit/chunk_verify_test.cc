// Chunk manifests (worker/chunk_manifest.h) and blobs checked chunk by chunk
// (worker/chunk_verified_source.h, through worker/verifying_backend.h). The chunk
// digests below were computed with coreutils' sha256sum, not by the code under test:
// 4096 'a's, 4096 'b's and 100 'c's.
#include "tests/unit/blob_reads.h"
#include "worker/chunk_manifest.h"
#include "worker/chunk_verified_source.h"
#include "worker/verifying_backend.h"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <vector>

using namespace cfs;

namespace {

const std::string kA = "c93eee2d0db02f10acc7460d9576e122dcf8cd53c4bf8dfcae1b3e74ebcfff5a";
const std::string kB = "5389688abf55bc46639385085bfaf1fda3552f63303e4d4a55d664d0f515d6ac";
const std::string kC = "bdcdc9e9204fe2099666b438af288629b1fa7f89797341bf7d435ce4ca2b706b";
const std::string kBlob = std::string(4096, 'a') + std::string(4096, 'b') + std::string(100, 'c');
// As `split -b 4096 --filter=sha256sum` writes the digest lines.
const std::string kManifest = "cfs-chunks 1\nchunk_size 4096\nsize 8292\n" + kA + "  -\n" + kB + "  -\n" + kC + "  -\n";

struct Fetch {
    std::uint64_t offset;
    std::size_t length;
};

// A blob in memory whose bytes the test can change, recording every fetch.
class MemoryBlob final : public worker::BlobSource {
public:
    MemoryBlob(const std::string& data, std::vector<Fetch>& fetches) : data_(data), fetches_(fetches) {}
    std::uint64_t size() const override { return data_.size(); }
    Result<std::size_t> read_at(std::span<std::byte> buffer, std::uint64_t offset) override {
        fetches_.push_back({offset, buffer.size()});
        return testing::read_from(data_, buffer, offset);
    }

private:
    const std::string& data_;
    std::vector<Fetch>& fetches_;
};

class MemoryBackend final : public worker::BlobBackend {
public:
    std::map<std::string, std::string, std::less<>> blobs;
    std::map<std::string, int, std::less<>> errors;
    std::vector<Fetch> fetches;
    Result<std::unique_ptr<worker::BlobSource>> open(std::string_view name) override {
        if (auto e = errors.find(name); e != errors.end()) return sys_error(e->second, "opening");
        auto it = blobs.find(name);
        if (it == blobs.end()) return sys_error(ENOENT, "no such blob");
        return std::unique_ptr<worker::BlobSource>(std::make_unique<MemoryBlob>(it->second, fetches));
    }
};

using testing::read_range;

struct Chunked {
    MemoryBackend remote;
    MemoryBackend dir;  // the local blob directory, holding manifests
    int mismatches = 0;
    worker::VerifyingBackend verifying{remote, worker::kWholeBlobLimit, [this] { ++mismatches; }};
    Chunked() {
        remote.blobs["img"] = kBlob;
        dir.blobs["img.chunks"] = kManifest;
        verifying.use_chunk_manifests(dir);
    }
    std::unique_ptr<worker::BlobSource> open(std::string_view name = "img") {
        auto b = verifying.open(name);
        REQUIRE_MESSAGE(b, (b ? "" : b.error().message()));
        return std::move(*b);
    }
};

}  // namespace

TEST_CASE("chunk manifest: parsed as written by coreutils, comments and blank lines ignored") {
    auto m = worker::parse_chunk_manifest("# made by hand\n\n" + kManifest, "img.chunks");
    REQUIRE_MESSAGE(m, (m ? "" : m.error().message()));
    CHECK(m->chunk_size == 4096);
    CHECK(m->blob_size == 8292);
    REQUIRE(m->chunks.size() == 3);
    CHECK(worker::to_hex(m->chunks[0]) == kA);
    CHECK(worker::to_hex(m->chunks[2]) == kC);
}

TEST_CASE("chunk manifest: every malformed manifest is refused, naming the file and line") {
    struct Case {
        std::string text;
        std::string says;
    };
    const std::string head = "cfs-chunks 1\nchunk_size 4096\nsize 8292\n";
    for (const Case& c : std::vector<Case>{
             {"cfs-chunks 2\n", "img.chunks line 1: expected \"cfs-chunks 1\""},
             {"cfs-chunks 1\nchunk_size 1000\n", "line 2: chunk_size 1000 is not a multiple of 4096"},
             {"cfs-chunks 1\nchunk_size 33554432\n", "line 2: chunk_size 33554432 is not a multiple"},
             {"cfs-chunks 1\nchunk_size 4096\nsize x\n", "line 3: expected \"size <bytes>\""},
             {head + kA + "\n" + kB + "\n", "line 5: 2 chunk digests, but a blob of 8292 bytes has 3 chunks"},
             {head + kA + "\n" + kB + "\n" + kC + "\n" + kC + "\n", "line 7: more chunk digests than the 3 chunks"},
             {head + kA + "\nBAD\n", "line 5: expected a chunk's SHA-256"},
             {head + std::string(64, 'A') + "\n", "line 4: expected a chunk's SHA-256"},
             {"cfs-chunks 1\nchunk_size 4096\n", "ends before its chunk digests"},
         }) {
        CAPTURE(c.text);
        auto m = worker::parse_chunk_manifest(c.text, "img.chunks");
        REQUIRE_FALSE(m);
        CHECK(m.error().errnum == EIO);
        CHECK_MESSAGE(m.error().message().find(c.says) != std::string::npos, m.error().message());
    }
}

TEST_CASE("chunks: reads across chunks are right, and only whole chunks are fetched") {
    Chunked c;
    auto blob = c.open();
    CHECK(blob->size() == kBlob.size());
    CHECK(read_range(*blob, 4000, 200) == kBlob.substr(4000, 200));
    CHECK(read_range(*blob, 8190, 1000) == kBlob.substr(8190));
    CHECK(read_range(*blob, 0, 8292) == kBlob);
    CHECK(read_range(*blob, 9000, 10).empty());
    for (const auto& f : c.remote.fetches) {
        CAPTURE(f.offset);
        CHECK(f.offset % 4096 == 0);
        CHECK((f.length % 4096 == 0 || f.offset + f.length == kBlob.size()));
    }
    CHECK(c.mismatches == 0);
}

TEST_CASE("chunks: the chunks one read needs are fetched in one request") {
    Chunked c;
    auto blob = c.open();
    CHECK(read_range(*blob, 100, 8192) == kBlob.substr(100, 8192));
    REQUIRE(c.remote.fetches.size() == 1);
    CHECK(c.remote.fetches[0].offset == 0);
    CHECK(c.remote.fetches[0].length == kBlob.size());
    // The last chunk is kept: a read that starts in it fetches only what follows.
    c.remote.fetches.clear();
    CHECK(read_range(*blob, 8200, 50) == kBlob.substr(8200, 50));
    CHECK(c.remote.fetches.empty());
}

TEST_CASE("chunks: blobs share the worker's two kept chunks, and never see each other's") {
    Chunked c;
    c.remote.blobs["img2"] = kBlob;
    c.dir.blobs["img2.chunks"] = kManifest;
    c.remote.blobs["img2"][10] = 'X';  // only img2's chunk 0 is bad
    auto one = c.open("img");
    auto two = c.open("img2");
    CHECK(read_range(*one, 0, 10) == kBlob.substr(0, 10));
    int err = 0;
    read_range(*two, 0, 10, &err);
    CHECK(err == EIO);
    CHECK(read_range(*one, 0, 4096) == kBlob.substr(0, 4096));
}

TEST_CASE("chunks: a chunk read in pieces is fetched once") {
    Chunked c;
    auto blob = c.open();
    for (std::uint64_t off = 0; off < 4096; off += 512) CHECK(read_range(*blob, off, 512) == kBlob.substr(off, 512));
    CHECK(c.remote.fetches.size() == 1);
}

TEST_CASE("chunks: a corrupted chunk fails with EIO naming it, and the others still read right") {
    Chunked c;
    c.remote.blobs["img"][4096 + 77] = 'X';
    auto blob = c.open();
    int err = 0;
    const std::string failed = read_range(*blob, 4096, 10, &err);
    CHECK(err == EIO);
    CHECK_MESSAGE(failed.find("blob img chunk 1 (bytes 4096-8191) failed verification: expected sha256:" + kB +
                              ", got sha256:") != std::string::npos,
                  failed);
    CHECK(c.mismatches == 1);
    // A range that only touches the bad chunk at its end fails too: nothing of it is handed out.
    err = 0;
    read_range(*blob, 4000, 200, &err);
    CHECK(err == EIO);
    CHECK(c.mismatches == 2);
    CHECK(read_range(*blob, 0, 4096) == kBlob.substr(0, 4096));
    CHECK(read_range(*blob, 8192, 100) == kBlob.substr(8192));
}

TEST_CASE("chunks: a bad chunk is fetched again on the next read, so a repaired server serves it") {
    Chunked c;
    c.remote.blobs["img"][5000] = 'X';
    auto blob = c.open();
    int err = 0;
    read_range(*blob, 5000, 1, &err);
    REQUIRE(err == EIO);
    c.remote.blobs["img"][5000] = 'b';
    CHECK(read_range(*blob, 4096, 4096) == kBlob.substr(4096, 4096));
    CHECK(c.mismatches == 1);
}

TEST_CASE("chunks: a manifest takes over from the whole-blob digest for a digest-named blob") {
    Chunked c;
    // Under a wrong digest name: a small blob would fail at OPEN; with a manifest it
    // is served chunk by chunk, as the manifest says.
    const std::string name = "sha256:" + std::string(64, '0');
    c.remote.blobs[name] = kBlob;
    c.dir.blobs[name + ".chunks"] = kManifest;
    auto blob = c.open(name);
    CHECK(read_range(*blob, 0, 8292) == kBlob);
    CHECK(c.mismatches == 0);
}

TEST_CASE("chunks: a blob without a manifest is served as before") {
    Chunked c;
    c.remote.blobs["plain"] = "plain bytes";
    auto blob = c.open("plain");
    CHECK(read_range(*blob, 0, 100) == "plain bytes");
}

TEST_CASE("chunks: a manifest of another size, malformed or unreadable fails the OPEN naming it") {
    Chunked c;
    c.remote.blobs["img"] = kBlob + "x";
    auto b = c.verifying.open("img");
    REQUIRE_FALSE(b);
    CHECK(b.error().errnum == EIO);
    CHECK(b.error().message() == "chunk manifest img.chunks is for 8292 bytes, but blob img has 8293: Input/output error");

    c.remote.blobs["img"] = kBlob;
    c.dir.blobs["img.chunks"] = "nonsense\n";
    b = c.verifying.open("img");
    REQUIRE_FALSE(b);
    CHECK(b.error().message().find("chunk manifest img.chunks line 1:") != std::string::npos);

    c.dir.blobs.erase("img.chunks");
    c.dir.errors["img.chunks"] = EACCES;
    b = c.verifying.open("img");
    REQUIRE_FALSE(b);
    CHECK(b.error().errnum == EIO);
    CHECK(b.error().message().find("chunk manifest img.chunks: opening") != std::string::npos);
}

TEST_CASE("chunks: a whole-blob mismatch is counted too") {
    Chunked c;
    const std::string wrong = "sha256:" + std::string(64, '0');
    c.remote.blobs[wrong] = "abc";
    CHECK_FALSE(c.verifying.open(wrong));
    CHECK(c.mismatches == 1);
}

// Chunks may be 16 MiB: a blob that goes gives its kept chunks' memory back, and the
// stores of a worker keep theirs in one cache, not one each.
TEST_CASE("chunks: a blob that goes frees its kept chunks; backends can share one cache") {
    worker::ChunkCache shared;
    Chunked c;
    c.verifying.share_chunk_cache(shared);
    Chunked other;
    other.verifying.share_chunk_cache(shared);
    {
        auto blob = c.open();
        CHECK(read_range(*blob, 0, 10) == kBlob.substr(0, 10));
        CHECK(shared.bytes_held() >= 4096);
        auto from_other = other.open();
        CHECK(read_range(*from_other, 4096, 10) == kBlob.substr(4096, 10));
        CHECK(shared.bytes_held() >= 2 * 4096);
    }
    CHECK(shared.bytes_held() == 0);
}
