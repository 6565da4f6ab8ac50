// Worker statistics pages (common/worker_stats.h): the bucket layout, percentiles
// from known distributions, the worker's writer, the supervisor's validating reader
// fed garbage, the sealed memfd, totals that outlive workers, stuck-request
// warnings, and status with the new fields.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/kernel_msg.h"
#include "common/worker_stats.h"
#include "supervisor/stats_book.h"
#include "supervisor/stats_page.h"
#include "supervisor/status.h"
#include "tests/unit/stderr_capture.h"
#include "worker/request_stats.h"

using namespace cfs;
using namespace cfs::supervisor;
using cfs::testing::StderrCapture;

namespace {

constexpr std::uint64_t kUs = 1000;
constexpr std::uint64_t kMs = 1000 * kUs;
constexpr std::uint64_t kS = 1000 * kMs;

stats::PageLayout fresh_page() {
    stats::PageLayout p{};
    p.magic = stats::kMagic;
    p.layout = stats::kLayout;
    return p;
}

// The exact q-quantile of samples (the rank-th smallest, as latency_percentile).
double exact_percentile(std::vector<std::uint64_t> samples, double q) {
    std::sort(samples.begin(), samples.end());
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(samples.size())));
    return static_cast<double>(samples[std::max<std::size_t>(rank, 1) - 1]);
}

LatencyHistogram histogram_of(const std::vector<std::uint64_t>& samples) {
    LatencyHistogram h{};
    for (auto ns : samples) ++h[stats::latency_bucket(ns)];
    return h;
}

// Within one bucket's width (< 25%) of the exact figure.
void check_close(const LatencyHistogram& h, const std::vector<std::uint64_t>& samples, double q) {
    const auto got = latency_percentile(h, q);
    REQUIRE(got.has_value());
    const double want = exact_percentile(samples, q);
    INFO("q ", q, ": got ", *got, " ns, exact ", want, " ns");
    CHECK(*got >= want * 0.75);
    CHECK(*got <= want * 1.25);
}

// A kernel message header as the device delivers it.
std::vector<std::byte> request(kmsg::Opcode opcode, std::uint32_t object_id) {
    kmsg::Header h{7, static_cast<std::uint32_t>(opcode), sizeof(kmsg::Header), object_id};
    std::vector<std::byte> out(sizeof h);
    std::memcpy(out.data(), &h, sizeof h);
    return out;
}

WorkerStatus worker_status(unsigned id, pid_t pid, const char* state) {
    WorkerStatus w;
    w.id = id;
    w.pid = pid;
    w.state = state;
    return w;
}

std::uint64_t g_fake_now = 0;
std::uint64_t fake_clock() { return g_fake_now; }

std::size_t occurrences(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
    return n;
}

// The worker's end of a page: the fd mapped as a worker maps it.
worker::MappedStatsPage worker_map(int fd) {
    unique_fd copy(::dup(fd));
    auto mapped = worker::MappedStatsPage::map(copy);
    REQUIRE_MESSAGE(mapped.ok(), mapped.error().message());
    return std::move(*mapped);
}

}  // namespace

TEST_CASE("stats: latency buckets are contiguous, ordered and at most 25% wide from 8 us to 17 s") {
    CHECK(stats::latency_bucket(0) == 0);
    CHECK(stats::latency_bucket(8191) == 0);
    CHECK(stats::latency_bucket(8192) == 1);
    CHECK(stats::latency_bucket(UINT64_MAX) == stats::kLatencyBuckets - 1);
    for (std::size_t b = 1; b < stats::kLatencyBuckets; ++b) {
        const auto lower = stats::bucket_lower_ns(b);
        INFO("bucket ", b, " starts at ", lower);
        CHECK(lower > stats::bucket_lower_ns(b - 1));
        CHECK(stats::latency_bucket(lower) == b);
        CHECK(stats::latency_bucket(lower - 1) == b - 1);
        if (b + 1 < stats::kLatencyBuckets) {
            const auto width = stats::bucket_lower_ns(b + 1) - lower;
            CHECK(static_cast<double>(width) <= 0.25 * static_cast<double>(lower));
        }
    }
    CHECK(stats::bucket_lower_ns(1) <= 10 * kUs);
    CHECK(stats::bucket_lower_ns(stats::kLatencyBuckets - 1) >= 10 * kS);
}

TEST_CASE("stats: percentiles of known distributions") {
    SUBCASE("no samples: no percentile") {
        CHECK_FALSE(latency_percentile(LatencyHistogram{}, 0.5).has_value());
    }
    SUBCASE("all samples alike: every percentile lies in their bucket") {
        const std::vector<std::uint64_t> samples(1000, 100 * kUs);
        const auto h = histogram_of(samples);
        for (double q : {0.01, 0.5, 0.9, 0.99, 1.0}) {
            const auto got = latency_percentile(h, q);
            REQUIRE(got.has_value());
            CHECK(*got >= static_cast<double>(stats::bucket_lower_ns(stats::latency_bucket(100 * kUs))));
            CHECK(*got <= static_cast<double>(stats::bucket_lower_ns(stats::latency_bucket(100 * kUs) + 1)));
        }
    }
    SUBCASE("uniform from 10 us to 10 ms") {
        std::mt19937_64 rng(1);
        std::uniform_int_distribution<std::uint64_t> d(10 * kUs, 10 * kMs);
        std::vector<std::uint64_t> samples(20000);
        for (auto& s : samples) s = d(rng);
        const auto h = histogram_of(samples);
        for (double q : {0.5, 0.9, 0.99}) check_close(h, samples, q);
    }
    SUBCASE("log-uniform from 10 us to 10 s") {
        std::mt19937_64 rng(2);
        std::uniform_real_distribution<double> d(std::log(10e3), std::log(10e9));
        std::vector<std::uint64_t> samples(20000);
        for (auto& s : samples) s = static_cast<std::uint64_t>(std::exp(d(rng)));
        const auto h = histogram_of(samples);
        for (double q : {0.5, 0.9, 0.99}) check_close(h, samples, q);
    }
    SUBCASE("a slow tail: 97% at 50 us, 3% at 2 s") {
        std::vector<std::uint64_t> samples(970, 50 * kUs);
        samples.insert(samples.end(), 30, 2 * kS);
        const auto h = histogram_of(samples);
        for (double q : {0.5, 0.9, 0.99}) check_close(h, samples, q);
        CHECK(*latency_percentile(h, 0.9) < 100.0 * kUs);
        CHECK(*latency_percentile(h, 0.99) > 1.0 * kS);
    }
    SUBCASE("beyond 17 s: the top bucket answers its lower bound") {
        LatencyHistogram h{};
        h[stats::kLatencyBuckets - 1] = 5;
        CHECK(*latency_percentile(h, 0.5) == static_cast<double>(stats::bucket_lower_ns(stats::kLatencyBuckets - 1)));
    }
}

TEST_CASE("stats: the worker's writer counts requests by kind, bytes, READ latency and the request in hand") {
    auto page = fresh_page();
    worker::RequestStats recorder(&page, fake_clock);
    g_fake_now = 1000 * kS;

    const auto open = request(kmsg::Opcode::open, 5);
    recorder.begin(open);
    auto mid = read_page(page, 0, g_fake_now);
    REQUIRE(mid.in_flight.has_value());
    CHECK(mid.in_flight->opcode == stats::kOpcodeOpen);
    CHECK(mid.in_flight->object_id == 5);
    CHECK(mid.in_flight->started_ns == 1000 * kS);
    recorder.end(0);
    CHECK_FALSE(read_page(page, 0, g_fake_now).in_flight.has_value());

    for (int i = 0; i < 10; ++i) {
        recorder.begin(request(kmsg::Opcode::read, 5));
        g_fake_now += 200 * kUs;
        recorder.end(4096U * (i + 1));
    }
    recorder.begin(request(kmsg::Opcode::close, 5));
    recorder.end(40960);
    const std::array<std::byte, 3> junk{};
    recorder.begin(junk);  // too short to have a header
    recorder.end(40960);

    const auto r = read_page(page, 0, g_fake_now);
    CHECK(r.header_ok);
    CHECK(r.counts.requests[stats::kOpcodeOpen] == 1);
    CHECK(r.counts.requests[stats::kOpcodeRead] == 10);
    CHECK(r.counts.requests[stats::kOpcodeClose] == 1);
    CHECK(r.counts.other == 1);
    CHECK(r.counts.bytes_written == 40960);
    CHECK(r.counts.read_latency[stats::latency_bucket(200 * kUs)] == 10);
    const auto f = served_figures(r.counts);
    CHECK(f.read_samples == 10);
    REQUIRE(f.read_p50_us.has_value());
    CHECK(*f.read_p50_us >= 170);
    CHECK(*f.read_p50_us <= 240);
    CHECK_FALSE(r.in_flight.has_value());
    // Read-ahead written after the last request counts at once, as no request.
    recorder.written(40960 + 131072);
    const auto ahead = read_page(page, 0, g_fake_now);
    CHECK(ahead.counts.bytes_written == 40960 + 131072);
    CHECK(ahead.counts.requests[stats::kOpcodeRead] == 10);
    CHECK_FALSE(ahead.in_flight.has_value());

    worker::RequestStats nothing(nullptr, fake_clock);  // no page: a no-op, not a crash
    nothing.begin(open);
    nothing.end(1);
    nothing.written(2);
}

TEST_CASE("stats: garbage in a page never gives the supervisor an absurd reading") {
    std::mt19937_64 rng(42);
    const std::uint64_t now = 5000 * kS, started = 4000 * kS;
    for (int round = 0; round < 2000; ++round) {
        alignas(stats::PageLayout) std::array<unsigned char, sizeof(stats::PageLayout)> raw;
        if (round == 0) raw.fill(0xff);
        else for (auto& b : raw) b = static_cast<unsigned char>(rng());
        stats::PageLayout page;
        std::memcpy(&page, raw.data(), sizeof page);
        // Half the rounds keep a valid header, as a worker that scribbles only past it.
        if (round % 2 == 1) {
            page.magic = stats::kMagic;
            page.layout = stats::kLayout;
        }
        // Some rounds put a believable request in hand.
        if (round % 4 == 3) page.current_started_ns = started + rng() % kS;
        const auto r = read_page(page, started, now);
        INFO("round ", round);
        if (!r.header_ok) {
            CHECK(round % 2 == 0);
            CHECK(r.counts.bytes_written == 0);
            CHECK_FALSE(r.in_flight.has_value());
            continue;
        }
        for (auto n : r.counts.requests) CHECK(n <= kMaxCount);
        CHECK(r.counts.other <= kMaxCount);
        CHECK(r.counts.bytes_written <= kMaxBytes);
        CHECK(r.counts.fetch_errors <= kMaxCount);
        for (auto n : r.counts.read_latency) CHECK(n <= kMaxCount);
        if (r.in_flight) {
            CHECK(r.in_flight->started_ns + kS >= started);
            CHECK(r.in_flight->started_ns <= now + kS);
            CHECK(!opcode_name(r.in_flight->opcode).empty());
        }
        if (round % 4 == 3) CHECK(r.in_flight.has_value());
        // Summed over many workers and restarts, figures saturate, never wrap.
        RequestCounts sum;
        for (int i = 0; i < 20; ++i) sum += r.counts;
        for (std::size_t i = 0; i < sum.requests.size(); ++i) CHECK(sum.requests[i] >= r.counts.requests[i]);
        CHECK(sum.bytes_written >= r.counts.bytes_written);
        const auto f = served_figures(sum);
        for (const auto& p : {f.read_p50_us, f.read_p90_us, f.read_p99_us}) {
            if (!p) continue;
            CHECK(std::isfinite(*p));
            CHECK(*p >= 0);
            CHECK(*p <= static_cast<double>(stats::bucket_lower_ns(stats::kLatencyBuckets - 1)) / 1000.0);
        }
        // Rendering such a page's figures works too.
        StatusSnapshot s;
        s.served = f;
        CHECK_FALSE(render_json(s).empty());
        CHECK_FALSE(render_text(s).empty());
    }
    SUBCASE("a start time in the future or before the worker started is not believed") {
        auto page = fresh_page();
        page.current_started_ns = now + 10 * kS;
        CHECK_FALSE(read_page(page, started, now).in_flight.has_value());
        page.current_started_ns = started - 10 * kS;
        CHECK_FALSE(read_page(page, started, now).in_flight.has_value());
        page.current_started_ns = now - kS;
        page.current_opcode = 0xdeadbeef;
        const auto r = read_page(page, started, now);
        REQUIRE(r.in_flight.has_value());
        CHECK(opcode_name(r.in_flight->opcode) == "opcode 3735928559");
    }
}

TEST_CASE("stats: sums saturate instead of wrapping") {
    RequestCounts a, b;
    a.requests[0] = UINT64_MAX - 1;
    a.read_latency[3] = UINT64_MAX;
    b.requests[0] = 5;
    b.read_latency[3] = 1;
    b.read_latency[4] = 7;
    a += b;
    CHECK(a.requests[0] == UINT64_MAX);
    CHECK(a.read_latency[3] == UINT64_MAX);
    CHECK(a.read_latency[4] == 7);
    CHECK(served_figures(a).read_samples == UINT64_MAX);
}

TEST_CASE("stats: the page is a sealed memfd the worker can write and cannot resize") {
    auto page = StatsPage::create();
    REQUIRE_MESSAGE(page.ok(), page.error().message());
    const int fd = page->fd();
    const int seals = ::fcntl(fd, F_GET_SEALS);
    CHECK((seals & F_SEAL_SHRINK) != 0);
    CHECK((seals & F_SEAL_GROW) != 0);
    CHECK((seals & F_SEAL_SEAL) != 0);
    CHECK(::ftruncate(fd, 0) < 0);
    CHECK(errno == EPERM);
    CHECK(::ftruncate(fd, 2 * stats::kPageBytes) < 0);
    CHECK(::fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) < 0);  // nor seal it against its own writer
    CHECK(::lseek(fd, 0, SEEK_END) == static_cast<off_t>(stats::kPageBytes));

    auto mapped = worker_map(fd);
    worker::RequestStats recorder(mapped.get(), fake_clock);
    g_fake_now = 1;
    recorder.begin(request(kmsg::Opcode::read, 9));
    g_fake_now += kMs;
    recorder.end(8192);
    const auto r = read_page(page->layout(), 0, g_fake_now);
    CHECK(r.header_ok);
    CHECK(r.counts.requests[stats::kOpcodeRead] == 1);
    CHECK(r.counts.bytes_written == 8192);

    SUBCASE("a worker refuses a page of another size or layout") {
        unique_fd small(::memfd_create("small", MFD_CLOEXEC));
        REQUIRE(::ftruncate(small.get(), 100) == 0);
        CHECK_FALSE(worker::MappedStatsPage::map(small).ok());
        unique_fd other(::memfd_create("other", MFD_CLOEXEC));
        REQUIRE(::ftruncate(other.get(), stats::kPageBytes) == 0);
        auto refused = worker::MappedStatsPage::map(other);
        REQUIRE_FALSE(refused.ok());
        CHECK(refused.error().message().find("layout 0") != std::string::npos);
    }
}

TEST_CASE("stats: totals outlive workers; status shows figures per slot and overall") {
    StatsBook book;
    std::vector<WorkerSlot> workers(2);
    for (unsigned i = 0; i < 2; ++i) {
        workers[i].id = i;
        workers[i].pid = 100 + static_cast<pid_t>(i);
        workers[i].started = Clock::now();
    }
    const auto describe = [](std::uint32_t id) { return id == 9 ? std::string("erofs,img_b img_b") : std::string(); };
    auto serve = [&](unsigned slot, int reads, std::uint64_t bytes) {
        auto fd = book.open_page(slot);
        REQUIRE(fd.ok());
        auto mapped = worker_map(*fd);
        worker::RequestStats recorder(mapped.get(), fake_clock);
        recorder.begin(request(kmsg::Opcode::open, 9));
        recorder.end(0);
        for (int i = 0; i < reads; ++i) {
            recorder.begin(request(kmsg::Opcode::read, 9));
            g_fake_now += 50 * kUs;
            recorder.end(bytes);
        }
    };
    serve(0, 3, 12288);
    book.retire(0);  // the worker in slot 0 died
    CHECK(book.retired_pages() == 1);
    book.release_retired();
    CHECK(book.retired_pages() == 0);
    serve(0, 2, 4096);  // its replacement
    serve(1, 5, 20480);

    StatusSnapshot s;
    for (const auto& w : workers) s.workers.push_back(worker_status(w.id, w.pid, "serving"));
    book.fill(s, workers, Clock::now(), describe);
    CHECK(s.served.open == 3);
    CHECK(s.served.read == 10);
    CHECK(s.served.bytes == 12288 + 4096 + 20480);
    CHECK(s.served.read_samples == 10);
    CHECK(s.workers[0].served.read == 5);
    CHECK(s.workers[0].served.bytes == 12288 + 4096);
    CHECK(s.workers[1].served.read == 5);
    CHECK(s.in_flight.empty());
    CHECK(s.stuck_after_s == 30);

    book.retire(0);
    book.retire(1);
    book.retire(1);  // twice: nothing more
    CHECK(book.retired_pages() == 2);
    StatusSnapshot after;
    for (const auto& w : workers) after.workers.push_back(worker_status(w.id, -1, "absent"));
    book.fill(after, workers, Clock::now(), describe);
    CHECK(after.served.read == 10);
    CHECK(after.served.bytes == s.served.bytes);
    CHECK(after.workers[1].served.bytes == 20480);
}

TEST_CASE("stats: a request in hand too long shows in status and is logged once, naming worker, object and age") {
    StatsBook book;
    std::vector<WorkerSlot> workers(1);
    workers[0].id = 0;
    workers[0].pid = 4242;
    workers[0].started = Clock::now();
    const auto describe = [](std::uint32_t) { return std::string("erofs,img_b img_b"); };
    auto fd = book.open_page(0);
    REQUIRE(fd.ok());
    auto mapped = worker_map(*fd);
    // A READ read "now" by the worker, on the same clock as the supervisor's.
    worker::RequestStats recorder(mapped.get());
    recorder.begin(request(kmsg::Opcode::read, 9));

    const auto later = Clock::now() + std::chrono::seconds(45);
    StatusSnapshot s;
    s.workers.push_back(worker_status(0, 4242, "serving"));
    book.fill(s, workers, later, describe);
    REQUIRE(s.in_flight.size() == 1);
    CHECK(s.in_flight[0].stuck);
    CHECK(s.in_flight[0].opcode == "READ");
    CHECK(s.in_flight[0].object_id == 9);
    CHECK(s.in_flight[0].age_s >= 44.9);
    CHECK(s.in_flight[0].age_s < 46);
    const auto text = render_text(s);
    CHECK(text.find("In flight: 1 request(s), oldest 45") != std::string::npos);
    CHECK(text.find("worker 0 pid 4242 READ of object 9 (erofs,img_b img_b) for 45") != std::string::npos);
    CHECK(text.find("STUCK") != std::string::npos);
    const auto json = render_json(s);
    CHECK(json.find("\"in_flight\":{\"count\":1,\"oldest_age_s\":45") != std::string::npos);
    CHECK(json.find("\"opcode\":\"READ\",\"object_id\":9,\"object\":\"erofs,img_b img_b\"") != std::string::npos);
    CHECK(json.find("\"stuck\":true") != std::string::npos);

    std::string log;
    {
        StderrCapture capture;
        book.check_stuck(workers, Clock::now() + std::chrono::seconds(10), describe);  // not yet stuck
        book.check_stuck(workers, later, describe);
        book.check_stuck(workers, later + std::chrono::seconds(5), describe);  // the same request: once
        recorder.end(4096);
        book.check_stuck(workers, later + std::chrono::seconds(10), describe);
        log = capture.text();
    }
    INFO("log:\n", log);
    CHECK(occurrences(log, "has been answering") == 1);
    CHECK(log.find("worker 0 (pid 4242) has been answering a READ of object 9 (erofs,img_b img_b) for 45 s") !=
          std::string::npos);
    CHECK(occurrences(log, "is done with the request it was stuck on") == 1);
}

TEST_CASE("stats: a worker that overwrites its page header is counted as nothing, and said so once") {
    StatsBook book;
    std::vector<WorkerSlot> workers(1);
    workers[0].id = 0;
    workers[0].pid = 77;
    workers[0].started = Clock::now();
    auto fd = book.open_page(0);
    REQUIRE(fd.ok());
    auto mapped = worker_map(*fd);
    mapped.get()->requests[stats::kOpcodeRead] = 12;
    mapped.get()->magic = 0x41414141;
    StatusSnapshot s;
    s.workers.push_back(worker_status(0, 77, "serving"));
    book.fill(s, workers, Clock::now(), [](std::uint32_t) { return std::string(); });
    CHECK_FALSE(s.workers[0].stats_ok);
    CHECK(s.served.read == 0);
    CHECK(render_text(s).find("statistics page is corrupt") != std::string::npos);
    CHECK(render_json(s).find("\"stats_ok\":false") != std::string::npos);
    std::string log;
    {
        StderrCapture capture;
        book.check_stuck(workers, Clock::now(), [](std::uint32_t) { return std::string(); });
        book.check_stuck(workers, Clock::now(), [](std::uint32_t) { return std::string(); });
        log = capture.text();
    }
    CHECK(occurrences(log, "overwrote the header of its statistics page") == 1);
}

TEST_CASE("stats: failed fetches from blobs.url are counted in the page, summed, and shown in status") {
    auto page = fresh_page();
    worker::count_fetch_error(&page);
    worker::count_fetch_error(&page);
    worker::count_fetch_error(nullptr);  // no page: nothing, no crash
    const auto r = read_page(page, 0, 0);
    CHECK(r.counts.fetch_errors == 2);
    RequestCounts sum = r.counts;
    sum += r.counts;
    CHECK(sum.fetch_errors == 4);
    const ServedFigures f = served_figures(sum);
    CHECK(f.fetch_errors == 4);

    StatusSnapshot s;
    s.stuck_after_s = 30;
    s.blob_dir = "/blobs";
    // Local only, and nothing failed: no word of fetches.
    CHECK(render_text(s).find("failed fetches") == std::string::npos);
    s.served = f;
    s.blob_url = "http://registry.test/blobs/";
    const auto text = render_text(s);
    INFO(text);
    CHECK(text.find("       Blobs: /blobs\n              then http://registry.test/blobs/\n") != std::string::npos);
    CHECK(text.find("written to the cache; 4 failed fetches\n") != std::string::npos);
    const auto json = render_json(s);
    INFO(json);
    CHECK(json.find("\"blob_url\":\"http://registry.test/blobs/\",") != std::string::npos);
    CHECK(json.find("\"bytes_served\":0,\"fetch_errors\":4") != std::string::npos);
}

TEST_CASE("status: each [[volume]]'s store is shown under Blobs, and a remote one brings the failed fetches") {
    StatusSnapshot s;
    s.stuck_after_s = 30;
    s.blob_dir = "/blobs";
    s.volume_stores = {{"img_a", "/srv/a", ""}, {"img_b", "", "https://r.test/v2/b/blobs/"},
                       {"img_c", "/srv/c", "http://c.test/blobs/"}};
    const auto text = render_text(s);
    INFO(text);
    CHECK(text.find("       Blobs: /blobs\n"
                    "              erofs,img_a: /srv/a\n"
                    "              erofs,img_b: https://r.test/v2/b/blobs/\n"
                    "              erofs,img_c: /srv/c, then http://c.test/blobs/\n") != std::string::npos);
    CHECK(text.find("; 0 failed fetches\n") != std::string::npos);
    const auto json = render_json(s);
    INFO(json);
    CHECK(json.find("\"blob_url\":null,\"volumes\":[{\"volume\":\"erofs,img_a\",\"dir\":\"/srv/a\",\"url\":null},"
                    "{\"volume\":\"erofs,img_b\",\"dir\":null,\"url\":\"https://r.test/v2/b/blobs/\"},"
                    "{\"volume\":\"erofs,img_c\",\"dir\":\"/srv/c\",\"url\":\"http://c.test/blobs/\"}],") !=
          std::string::npos);
    s.volume_stores.clear();
    CHECK(render_json(s).find("\"volumes\":[],") != std::string::npos);
}

TEST_CASE("status: served figures, latency and requests in flight, in text and JSON") {
    StatusSnapshot s;
    s.version = "0.1.0";
    s.state = "serving";
    s.stuck_after_s = 30;
    s.served = ServedFigures{4, 1, 250, 0, 5 << 20, 250, 120.4, 1500, 2'500'000};
    s.workers.push_back(worker_status(0, 812, "serving"));
    s.workers[0].served = s.served;
    s.in_flight.push_back(InFlightRequest{0, 812, "READ", 5, "erofs,img_b img_b", 0.25, false});
    const auto text = render_text(s);
    INFO(text);
    CHECK(text.find("    Requests: 4 OPEN, 1 CLOSE, 250 READ; 5.0 MiB written to the cache\n") != std::string::npos);
    CHECK(text.find("     Latency: READ p50 120 us, p90 1.50 ms, p99 2.50 s (250 READs)\n") != std::string::npos);
    CHECK(text.find("   In flight: 1 request(s), oldest 0.2s\n") != std::string::npos);
    CHECK(text.find("served 255 requests, 5.0 MiB") != std::string::npos);
    CHECK(text.find("STUCK") == std::string::npos);
    const auto json = render_json(s);
    INFO(json);
    CHECK(json.find("\"requests\":{\"open\":4,\"close\":1,\"read\":250,\"other\":0},\"bytes_served\":5242880,") !=
          std::string::npos);
    CHECK(json.find("\"read_latency_us\":{\"samples\":250,\"p50\":120.4,\"p90\":1500.0,\"p99\":2500000.0}") !=
          std::string::npos);
    CHECK(json.find("\"in_flight\":{\"count\":1,\"oldest_age_s\":0.250,\"stuck_after_s\":30,\"requests\":[{\"worker\":0,"
                    "\"pid\":812,") != std::string::npos);
    CHECK(json.find("\"restart_in_s\":null,\"requests\":{\"open\":4,") != std::string::npos);

    StatusSnapshot idle;
    idle.stuck_after_s = 30;
    CHECK(render_text(idle).find("     Latency: no READ yet\n   In flight: none\n") != std::string::npos);
    const auto idle_json = render_json(idle);
    CHECK(idle_json.find("\"p50\":null,\"p90\":null,\"p99\":null") != std::string::npos);
    CHECK(idle_json.find("\"in_flight\":{\"count\":0,\"oldest_age_s\":null,") != std::string::npos);
}
