#include "supervisor/reload.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace cfs::supervisor {
namespace {

std::string shown(const std::string& s) { return s.empty() ? "(none)" : fmt::format("\"{}\"", s); }

}  // namespace

ReloadPlan plan_reload(const Config& running, const Config& next, std::optional<unsigned> bound_refuse_below) {
    ReloadPlan plan;
    auto refuse_shown = [&](std::string_view key, const std::string& from, const std::string& to,
                            std::string_view how) {
        if (from == to) return;
        plan.refused.push_back(fmt::format("{} cannot change while cfsupervisor runs ({} -> {}): {}", key, from, to, how));
    };
    auto refuse = [&](std::string_view key, const std::string& from, const std::string& to, std::string_view how) {
        refuse_shown(key, shown(from), shown(to), how);
    };
    // A `systemctl restart` keeps the bound device in the fd store, so the cache keeps
    // its old directory and tag: only a stop and a start binds again.
    constexpr std::string_view kRebind =
        "the kernel keeps the cache bound with it, across restarts too; apply it with "
        "`systemctl stop cfsupervisor` and `systemctl start cfsupervisor`";
    refuse("cache.dir", running.cache_dir, next.cache_dir, kRebind);
    refuse("cache.tag", running.cache_tag, next.cache_tag, kRebind);
    // The kernel counts it in blocks and files at bind.
    if (next.cull_limits.stop != bound_refuse_below.value_or(running.cull_limits.stop))
        refuse_shown("cache.refuse_below_percent", std::to_string(running.cull_limits.stop),
                     std::to_string(next.cull_limits.stop), kRebind);
    refuse("blobs.dir", running.blobs.dir, next.blobs.dir,
           "it is opened once at start; apply it with `systemctl restart cfsupervisor`");
    // Objects already open keep the size the old source gave; a new source could
    // serve other bytes under the same name (and its host is resolved at start).
    refuse("blobs.url", running.blobs.url, next.blobs.url,
           "open objects were sized by the old source and its host was resolved at start; apply it with "
           "`systemctl restart cfsupervisor`");
    refuse("blobs.credentials", running.blobs.credentials_file, next.blobs.credentials_file,
           "workers get the credentials when they start, read once at start; apply it with "
           "`systemctl restart cfsupervisor`");
    refuse("blobs.allowed_origins", fmt::format("{}", fmt::join(running.blobs.allowed_origins, " ")),
           fmt::format("{}", fmt::join(next.blobs.allowed_origins, " ")),
           "their hosts are resolved and their ports opened in the workers' sandbox at start; apply it with "
           "`systemctl restart cfsupervisor`");
    // The same reasons as for [blobs], for each volume's store: its directory is
    // opened, its hosts resolved and its credentials read once at start.
    if (running.volumes != next.volumes) {
        std::vector<std::string> differ;
        const auto find = [](const Config& c, const std::string& name) -> const VolumeConfig* {
            for (const VolumeConfig& v : c.volumes)
                if (v.name == name) return &v;
            return nullptr;
        };
        for (const VolumeConfig& v : running.volumes) {
            const VolumeConfig* now = find(next, v.name);
            if (now == nullptr) differ.push_back(fmt::format("\"{}\" removed", v.name));
            else if (!(now->blobs == v.blobs)) differ.push_back(fmt::format("\"{}\" changed", v.name));
        }
        for (const VolumeConfig& v : next.volumes)
            if (find(running, v.name) == nullptr) differ.push_back(fmt::format("\"{}\" added", v.name));
        if (differ.empty()) differ.push_back("reordered");
        plan.refused.push_back(fmt::format(
            "[[volume]] tables cannot change while cfsupervisor runs ({}): each volume's directory is opened, its "
            "hosts resolved and its credentials read once at start, and open objects were sized by the old store; "
            "apply it with `systemctl restart cfsupervisor`",
            fmt::join(differ, ", ")));
    }
    refuse("testing.fault_file", running.fault_file, next.fault_file,
           "it is read from the start; apply it with `systemctl restart cfsupervisor`");
    if (!plan.refused.empty()) return plan;

    const auto limit_changed = [&](std::string_view key, unsigned from, unsigned to) {
        if (from == to) return;
        plan.cull_limits = true;
        plan.changes.push_back(fmt::format("cache.{} {} -> {}", key, from, to));
    };
    limit_changed("cull_below_percent", running.cull_limits.cull, next.cull_limits.cull);
    limit_changed("cull_until_percent", running.cull_limits.run, next.cull_limits.run);
    limit_changed("refuse_below_percent", running.cull_limits.stop, next.cull_limits.stop);
    if (running.log_level != next.log_level) {
        plan.log_level = true;
        plan.changes.push_back(fmt::format("log.level {} -> {}", log::level_name(running.log_level),
                                           log::level_name(next.log_level)));
    }
    if (running.read_ahead_kib != next.read_ahead_kib) {
        plan.read_ahead = true;
        plan.changes.push_back(
            fmt::format("workers.read_ahead_kib {} -> {}", running.read_ahead_kib, next.read_ahead_kib));
    }
    if (running.worker_count != next.worker_count) {
        plan.workers = true;
        plan.changes.push_back(fmt::format("workers.count {} -> {}", running.worker_count, next.worker_count));
    }
    if (running.spare_count != next.spare_count) {
        plan.workers = true;
        plan.changes.push_back(fmt::format("workers.spares {} -> {}", running.spare_count, next.spare_count));
    }
    if (running.worker_user != next.worker_user) {
        plan.worker_user = true;
        plan.changes.push_back(fmt::format("workers.user {} -> {} (every worker is replaced, one at a time)",
                                           shown(running.worker_user), shown(next.worker_user)));
    }
    if (running.control_group != next.control_group) {
        plan.control_group = true;
        plan.changes.push_back(
            fmt::format("control.group {} -> {}", shown(running.control_group), shown(next.control_group)));
    }
    return plan;
}

}  // namespace cfs::supervisor
