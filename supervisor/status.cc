#include "supervisor/status.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/kernel_msg.h"
#include "supervisor/cache_cull.h"

namespace cfs::supervisor {
namespace {

std::string duration(double seconds) {
    const auto s = static_cast<long long>(seconds);
    if (s < 60) return fmt::format("{:.1f}s", seconds);
    if (s < 3600) return fmt::format("{}min {}s", s / 60, s % 60);
    if (s < 86400) return fmt::format("{}h {}min", s / 3600, (s % 3600) / 60);
    return fmt::format("{}d {}h", s / 86400, (s % 86400) / 3600);
}

// JSON string literal: valid UTF-8 (a path from the config) as it is, quotes,
// backslashes and control characters escaped; a byte that is no UTF-8 becomes
// U+FFFD, so the document is always valid JSON (volume keys come from mounts and may
// be any bytes, so they are made printable first).
std::string json_string(std::string_view in) {
    return nlohmann::json(std::string(in)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string bytes(std::uint64_t n) {
    if (n < 1024) return fmt::format("{} B", n);
    const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = static_cast<double>(n) / 1024;
    std::size_t u = 0;
    while (v >= 1024 && u + 1 < std::size(units)) {
        v /= 1024;
        ++u;
    }
    return fmt::format("{:.1f} {}", v, units[u]);
}

std::string latency(double us) {
    if (us < 1000) return fmt::format("{:.0f} us", us);
    if (us < 1e6) return fmt::format("{:.2f} ms", us / 1e3);
    return fmt::format("{:.2f} s", us / 1e6);
}

std::string json_number(const std::optional<double>& v, int decimals) {
    return v ? fmt::format("{:.{}f}", *v, decimals) : "null";
}

std::string json_requests(const ServedFigures& f) {
    return fmt::format(
        "\"requests\":{{\"open\":{},\"close\":{},\"read\":{},\"other\":{}}},\"bytes_served\":{},\"fetch_errors\":{}",
        f.open, f.close, f.read, f.other, f.bytes, f.fetch_errors);
}

std::string text_in_flight(const InFlightRequest& r) {
    std::string out = fmt::format("worker {} pid {} {} of object {}", r.worker, r.pid, r.opcode, r.object_id);
    if (!r.object.empty()) out += fmt::format(" ({})", kmsg::printable(r.object));
    out += fmt::format(" for {}", duration(r.age_s));
    if (r.stuck) out += " - STUCK";
    return out;
}

}  // namespace

std::string render_text(const StatusSnapshot& s) {
    std::string out;
    out += fmt::format("cfsupervisor {} - {}\n", s.version, s.state);
    out += fmt::format("      Uptime: {}\n", duration(s.uptime_s));
    out += fmt::format("       Cache: {} (tag {}), device {}{}\n", s.cache_dir, s.cache_tag, s.device_origin,
                       s.in_fd_store ? ", copy in systemd's fd store" : ", NOT in an fd store");
    out += "  Cache room: ";
    if (s.cache_room) {
        out += fmt::format("{:.1f}% of blocks free", s.cache_room->blocks_free);
        if (s.cache_room->files_free) out += fmt::format(", {:.1f}% of files", *s.cache_room->files_free);
    } else {
        out += "unknown (statvfs failed)";
    }
    out += fmt::format("; culls below {}% up to {}%; writes refused below {}\n", s.cull_below_percent,
                       s.cull_until_percent, refusal_limit_text(s.refuse_below_percent));
    out += fmt::format("       Blobs: {}\n", s.blob_dir);
    if (!s.blob_url.empty()) out += fmt::format("              then {}\n", s.blob_url);
    for (const auto& v : s.volume_stores) {
        out += fmt::format("              erofs,{}: {}", v.name, v.dir.empty() ? v.url : v.dir);
        if (!v.dir.empty() && !v.url.empty()) out += fmt::format(", then {}", v.url);
        out += "\n";
    }
    out += fmt::format("   Failovers: {}", s.failovers);
    if (s.last_recovery_ms) out += fmt::format(" (last recovery {:.0f} ms)", *s.last_recovery_ms);
    out += "\n";
    out += fmt::format("     Workers: {} serving wanted, {} spare(s)\n", s.workers_wanted, s.spares_wanted);
    for (const auto& w : s.workers) {
        out += fmt::format("       {:>3} ", w.id);
        if (w.pid > 0)
            out += fmt::format("pid {:<7} {:<9} up {:<10}", w.pid, w.state, duration(w.uptime_s));
        else
            out += fmt::format("{:<11} {:<9} {:<13}", "-", w.state, "");
        out += fmt::format(" restarts {}", w.restarts);
        if (w.consecutive_failures > 1) out += fmt::format(", {} failures in a row", w.consecutive_failures);
        if (!w.last_exit.empty()) out += fmt::format(", last exit: {}", w.last_exit);
        if (w.restart_in_s) out += fmt::format(", restarts in {:.1f}s", *w.restart_in_s);
        out += fmt::format(", served {} requests, {}", w.served.open + w.served.close + w.served.read,
                           bytes(w.served.bytes));
        if (w.pid > 0) out += fmt::format(", holds {} object(s)", w.objects_held);
        if (!w.stats_ok) out += " (its statistics page is corrupt)";
        out += "\n";
    }
    const auto& f = s.served;
    out += fmt::format("    Requests: {} OPEN, {} CLOSE, {} READ", f.open, f.close, f.read);
    if (f.other > 0) out += fmt::format(", {} malformed", f.other);
    out += fmt::format("; {} written to the cache", bytes(f.bytes));
    const bool remote = !s.blob_url.empty() || std::any_of(s.volume_stores.begin(), s.volume_stores.end(),
                                                            [](const auto& v) { return !v.url.empty(); });
    if (remote || f.fetch_errors > 0) out += fmt::format("; {} failed fetches", f.fetch_errors);
    out += "\n";
    if (f.read_p50_us && f.read_p90_us && f.read_p99_us)
        out += fmt::format("     Latency: READ p50 {}, p90 {}, p99 {} ({} READs)\n", latency(*f.read_p50_us),
                           latency(*f.read_p90_us), latency(*f.read_p99_us), f.read_samples);
    else
        out += "     Latency: no READ yet\n";
    if (s.in_flight.empty()) {
        out += "   In flight: none\n";
    } else {
        out += fmt::format("   In flight: {} request(s), oldest {}\n", s.in_flight.size(),
                           duration(s.in_flight.front().age_s));
        for (const auto& r : s.in_flight) out += fmt::format("              {}\n", text_in_flight(r));
    }
    unsigned total = 0;
    for (const auto& [volume, n] : s.objects_per_volume) total += n;
    out += fmt::format("     Objects: {} open; {} handed to spares ahead of need, {} asked for (ObjectQuery)\n",
                       total, s.objects_shared, s.object_queries);
    for (const auto& [volume, n] : s.objects_per_volume)
        out += fmt::format("              {} {}\n", n, kmsg::printable(volume));
    return out;
}

std::string render_json(const StatusSnapshot& s) {
    std::string out = "{";
    out += fmt::format("\"schema\":1,\"version\":{},\"state\":{},\"uptime_s\":{:.3f},", json_string(s.version),
                       json_string(s.state), s.uptime_s);
    std::string blocks_free = "null";
    std::string files_free = "null";
    if (s.cache_room) {
        blocks_free = fmt::format("{:.1f}", s.cache_room->blocks_free);
        if (s.cache_room->files_free) files_free = fmt::format("{:.1f}", *s.cache_room->files_free);
    }
    const std::string refuse_below =
        s.refuse_below_percent ? std::to_string(*s.refuse_below_percent) : std::string("null");
    out += fmt::format("\"cache\":{{\"dir\":{},\"tag\":{},\"device\":{},\"in_fd_store\":{},"
                       "\"free_blocks_percent\":{},\"free_files_percent\":{},\"cull_below_percent\":{},"
                       "\"cull_until_percent\":{},\"refuse_below_percent\":{}}},",
                       json_string(s.cache_dir), json_string(s.cache_tag), json_string(s.device_origin),
                       s.in_fd_store ? "true" : "false", blocks_free, files_free, s.cull_below_percent,
                       s.cull_until_percent, refuse_below);
    out += fmt::format("\"blob_dir\":{},", json_string(s.blob_dir));
    out += fmt::format("\"blob_url\":{},", s.blob_url.empty() ? std::string("null") : json_string(s.blob_url));
    out += "\"volumes\":[";
    for (std::size_t i = 0; i < s.volume_stores.size(); ++i) {
        const auto& v = s.volume_stores[i];
        const auto or_null = [](const std::string& x) { return x.empty() ? std::string("null") : json_string(x); };
        out += fmt::format("{}{{\"volume\":{},\"dir\":{},\"url\":{}}}", i == 0 ? "" : ",",
                           json_string("erofs," + v.name), or_null(v.dir), or_null(v.url));
    }
    out += "],";
    out += fmt::format("\"failovers\":{},\"last_recovery_ms\":{},", s.failovers,
                       s.last_recovery_ms ? fmt::format("{:.0f}", *s.last_recovery_ms) : "null");
    out += json_requests(s.served) + ",";
    out += fmt::format("\"read_latency_us\":{{\"samples\":{},\"p50\":{},\"p90\":{},\"p99\":{}}},", s.served.read_samples,
                       json_number(s.served.read_p50_us, 1), json_number(s.served.read_p90_us, 1),
                       json_number(s.served.read_p99_us, 1));
    out += fmt::format("\"in_flight\":{{\"count\":{},\"oldest_age_s\":{},\"stuck_after_s\":{:.0f},\"requests\":[",
                       s.in_flight.size(),
                       s.in_flight.empty() ? "null" : fmt::format("{:.3f}", s.in_flight.front().age_s), s.stuck_after_s);
    for (std::size_t i = 0; i < s.in_flight.size(); ++i) {
        const auto& r = s.in_flight[i];
        out += fmt::format("{}{{\"worker\":{},\"pid\":{},\"opcode\":{},\"object_id\":{},\"object\":{},\"age_s\":{:.3f},"
                           "\"stuck\":{}}}",
                           i > 0 ? "," : "", r.worker, r.pid, json_string(r.opcode), r.object_id,
                           r.object.empty() ? "null" : json_string(kmsg::printable(r.object)), r.age_s,
                           r.stuck ? "true" : "false");
    }
    out += "]},";
    out += fmt::format("\"workers_wanted\":{},\"spares_wanted\":{},\"workers\":[", s.workers_wanted, s.spares_wanted);
    for (std::size_t i = 0; i < s.workers.size(); ++i) {
        const auto& w = s.workers[i];
        if (i > 0) out += ",";
        out += fmt::format(
            "{{\"id\":{},\"pid\":{},\"state\":{},\"objects_held\":{},\"uptime_s\":{:.3f},\"restarts\":{},"
            "\"consecutive_failures\":{},\"last_exit\":{},\"restart_in_s\":{},{},\"stats_ok\":{}}}",
            w.id, w.pid > 0 ? fmt::format("{}", w.pid) : "null", json_string(w.state), w.objects_held, w.uptime_s,
            w.restarts,
            w.consecutive_failures, w.last_exit.empty() ? "null" : json_string(w.last_exit),
            w.restart_in_s ? fmt::format("{:.3f}", *w.restart_in_s) : "null", json_requests(w.served),
            w.stats_ok ? "true" : "false");
    }
    out += "],\"objects\":{";
    bool first = true;
    for (const auto& [volume, n] : s.objects_per_volume) {
        if (!first) out += ",";
        first = false;
        out += fmt::format("{}:{}", json_string(kmsg::printable(volume)), n);
    }
    out += fmt::format("}},\"objects_shared\":{},\"object_queries\":{}}}\n", s.objects_shared, s.object_queries);
    return out;
}

}  // namespace cfs::supervisor
