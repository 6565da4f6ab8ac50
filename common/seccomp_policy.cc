#include "common/seccomp_policy.h"

#include <fcntl.h>
#include <time.h>
#include <linux/cachefiles.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <linux/futex.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "common/file_text.h"

namespace cfs::seccomp {
namespace {

// policy/worker.seccomp, as a raw string literal generated at configure time
// (common/CMakeLists.txt): the file in the repository stays the one source.
constexpr std::string_view kBuiltinPolicy =
#include "common/worker_policy.inc"
    ;
// policy/worker-remote.seccomp, the same way.
constexpr std::string_view kBuiltinRemotePolicy =
#include "common/worker_remote_policy.inc"
    ;

constexpr std::size_t kMaxFileBytes = std::size_t{1} << 20;
constexpr std::string_view kSelfPid = "SELF_PID";

// The names a policy may use for values. Add a row when a rule needs a new one; the
// values are this build's, so the policy cannot disagree with the code it confines.
constexpr std::pair<std::string_view, std::uint64_t> kConstants[] = {
    {"CACHEFILES_IOC_READ_COMPLETE", CACHEFILES_IOC_READ_COMPLETE},
    {"SIGABRT", SIGABRT},
    {"SIG_BLOCK", SIG_BLOCK},
    {"SIG_UNBLOCK", SIG_UNBLOCK},
    {"SIG_SETMASK", SIG_SETMASK},
    {"O_RDONLY", O_RDONLY},
    {"O_CLOEXEC", O_CLOEXEC},
    {"O_NOCTTY", O_NOCTTY},
    {"O_NONBLOCK", O_NONBLOCK},
    {"O_NOFOLLOW", O_NOFOLLOW},
    {"O_DIRECT", O_DIRECT},
    {"O_DIRECTORY", O_DIRECTORY},
    {"AT_EMPTY_PATH", AT_EMPTY_PATH},
    {"F_SETFD", F_SETFD},
    {"FD_CLOEXEC", FD_CLOEXEC},
    {"PROT_NONE", PROT_NONE},
    {"PROT_READ", PROT_READ},
    {"PROT_WRITE", PROT_WRITE},
    {"MAP_PRIVATE", MAP_PRIVATE},
    {"MAP_ANONYMOUS", MAP_ANONYMOUS},
    {"MAP_NORESERVE", MAP_NORESERVE},
    {"MSG_NOSIGNAL", MSG_NOSIGNAL},
    {"MSG_CMSG_CLOEXEC", MSG_CMSG_CLOEXEC},
    {"MSG_DONTWAIT", MSG_DONTWAIT},
    {"MSG_PEEK", MSG_PEEK},
    {"EPOLL_CLOEXEC", EPOLL_CLOEXEC},
    {"SEEK_DATA", SEEK_DATA},
    {"SEEK_HOLE", SEEK_HOLE},
    {"POSIX_FADV_WILLNEED", POSIX_FADV_WILLNEED},
    {"CLOCK_MONOTONIC", CLOCK_MONOTONIC},
    {"CLOCK_REALTIME", CLOCK_REALTIME},
    {"FUTEX_WAKE_PRIVATE", FUTEX_WAKE_PRIVATE},
    {"AF_UNIX", AF_UNIX},
    {"AF_INET", AF_INET},
    {"AF_INET6", AF_INET6},
    {"SOCK_STREAM", SOCK_STREAM},
    {"SOCK_NONBLOCK", SOCK_NONBLOCK},
    {"SOCK_CLOEXEC", SOCK_CLOEXEC},
    {"IPPROTO_TCP", IPPROTO_TCP},
    {"TCP_NODELAY", TCP_NODELAY},
    {"SOL_SOCKET", SOL_SOCKET},
    {"SO_ERROR", SO_ERROR},
    {"F_GETFL", F_GETFL},
    {"F_SETFL", F_SETFL},
    {"O_RDWR", O_RDWR},
};

std::string known_names() {
    std::string out;
    for (const auto& [name, value] : kConstants) {
        if (!out.empty()) out += ", ";
        out += name;
    }
    return out + ", " + std::string(kSelfPid);
}

// Only what a policy line may hold is echoed back; anything else is shown escaped.
std::string printable(std::string_view s) {
    std::string out;
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) out += fmt::format("\\x{:02x}", u);
        else out += c;
    }
    return out;
}

std::vector<std::string_view> split_words(std::string_view line) {
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        if (i > start) words.push_back(line.substr(start, i - start));
    }
    return words;
}

bool is_syscall_name(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}

class LineParser {
public:
    LineParser(std::string_view origin, unsigned line) : origin_(origin), line_(line) {}

    [[nodiscard]] Error at(std::string_view what) const {
        return logic_error(fmt::format("{}:{}: {}", origin_, line_, what));
    }

    Result<std::uint64_t> term(std::string_view t) const {
        if (t.empty()) return at("expected a value, got an empty term (two '|' in a row?)");
        if (t[0] >= '0' && t[0] <= '9') {
            int base = 10;
            std::string_view digits = t;
            if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
                base = 16;
                digits.remove_prefix(2);
            }
            std::uint64_t v = 0;
            auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
            if (ec != std::errc() || end != digits.data() + digits.size())
                return at(fmt::format("expected a number (decimal or 0x hex) below 2^64, got '{}'", printable(t)));
            return v;
        }
        for (const auto& [name, value] : kConstants)
            if (name == t) return value;
        if (t == kSelfPid) return at("SELF_PID stands alone: 'argN == SELF_PID'");
        return at(fmt::format("unknown name '{}' (known: {})", printable(t), known_names()));
    }

    Result<Condition> condition(std::string_view arg, std::string_view op, std::string_view value) const {
        Condition c;
        c.text = fmt::format("{} {} {}", arg, op, value);
        if (arg.size() != 4 || !arg.starts_with("arg") || arg[3] < '0' || arg[3] > '5')
            return at(fmt::format("expected arg0 to arg5, got '{}'", printable(arg)));
        c.arg = static_cast<unsigned>(arg[3] - '0');
        if (op == "==") c.op = Condition::Op::equal;
        else if (op == "in") c.op = Condition::Op::within;
        else if (op == ">=") c.op = Condition::Op::at_least;
        else return at(fmt::format("expected '==', 'in' or '>=' after {}, got '{}'", arg, printable(op)));
        if (value == kSelfPid) {
            if (c.op != Condition::Op::equal) return at("SELF_PID is one pid: use '== SELF_PID'");
            c.self_pid = true;
            return c;
        }
        std::string_view rest = value;
        for (;;) {
            const std::size_t bar = rest.find('|');
            auto v = term(rest.substr(0, bar));
            if (!v) return std::move(v).error();
            c.value |= *v;
            if (bar == std::string_view::npos) break;
            rest.remove_prefix(bar + 1);
        }
        if (c.op == Condition::Op::at_least && c.value > 0xffffffffULL)
            return at(fmt::format("'>=' compares 32-bit values (fds, counts); {} is larger", printable(value)));
        return c;
    }

    // One non-empty line, comment removed.
    Result<Rule> rule(std::string_view text) const {
        const auto words = split_words(text);
        Rule r;
        r.line = line_;
        r.syscall = std::string(words[0]);
        if (!is_syscall_name(words[0]))
            return at(fmt::format("expected a syscall name (lower case, digits, '_'), got '{}'", printable(words[0])));
        r.number = seccomp_syscall_resolve_name(r.syscall.c_str());
        if (r.number == __NR_SCMP_ERROR || r.number < 0)
            return at(fmt::format("'{}' is not a system call on this architecture", r.syscall));
        std::size_t i = 1;
        while (i < words.size()) {
            if (i > 1) {
                if (words[i] != "&&")
                    return at(fmt::format("expected '&&' between conditions, got '{}'", printable(words[i])));
                ++i;
            }
            if (i + 3 > words.size())
                return at("incomplete condition at the end of the line (a condition is 'argN == VALUE', "
                          "'argN in FLAGS' or 'argN >= VALUE')");
            auto c = condition(words[i], words[i + 1], words[i + 2]);
            if (!c) return std::move(c).error();
            for (const Condition& other : r.conditions)
                if (other.arg == c->arg)
                    return at(fmt::format("two conditions on arg{} in one rule; write two rules to allow either", c->arg));
            if (c->op == Condition::Op::at_least)
                for (const Condition& other : r.conditions)
                    if (other.op == Condition::Op::at_least) return at("one '>=' condition per rule");
            r.conditions.push_back(std::move(*c));
            i += 3;
        }
        return r;
    }

private:
    std::string_view origin_;
    unsigned line_;
};

// A rule may not repeat or contradict one of `earlier` (a syscall allowed with any
// arguments is listed once).
Status check_clash(const std::vector<Rule>& earlier_rules, const Rule& rule, const LineParser& parser) {
    for (const Rule& earlier : earlier_rules) {
        if (earlier.syscall != rule.syscall) continue;
        const std::string where =
            earlier.origin == rule.origin ? fmt::format("line {}", earlier.line)
                                          : fmt::format("{}:{}", earlier.origin, earlier.line);
        if (earlier.conditions.empty())
            return parser.at(fmt::format("'{}' is already allowed with any arguments on {}", rule.syscall, where));
        if (rule.conditions.empty())
            return parser.at(fmt::format("'{}' is allowed with any arguments here, but with conditions on {}; "
                                         "keep one or the other",
                                         rule.syscall, where));
        if (describe(earlier) == describe(rule)) return parser.at(fmt::format("the same rule as {}", where));
    }
    return {};
}

}  // namespace

Result<Policy> extend_policy(const Policy& base, std::string_view text, std::string_view origin) {
    auto extra = parse_policy(text, origin);
    if (!extra) return std::move(extra).error();
    Policy merged = base;
    merged.origin = fmt::format("{} + {}", base.origin, extra->origin);
    for (Rule& rule : extra->rules) {
        const LineParser parser(extra->origin, rule.line);
        if (auto clash = check_clash(merged.rules, rule, parser); !clash) return std::move(clash).error();
        merged.rules.push_back(std::move(rule));
    }
    return merged;
}

Result<Policy> parse_policy(std::string_view text, std::string_view origin) {
    Policy policy;
    policy.origin = printable(origin);
    unsigned line_number = 0;
    while (!text.empty()) {
        ++line_number;
        const std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        if (split_words(line).empty()) continue;
        const LineParser parser(policy.origin, line_number);
        auto rule = parser.rule(line);
        if (!rule) return std::move(rule).error();
        rule->origin = policy.origin;
        if (auto clash = check_clash(policy.rules, *rule, parser); !clash) return std::move(clash).error();
        policy.rules.push_back(std::move(*rule));
    }
    if (policy.rules.empty()) return logic_error(fmt::format("{}:1: the policy allows no system call", policy.origin));
    return policy;
}

Result<Policy> load_policy(const std::string& path) {
    auto text = read_file_text(path, fmt::format("policy file {}", printable(path)), kMaxFileBytes);
    if (!text) return std::move(text).error();
    return parse_policy(*text, path);
}

std::string_view builtin_worker_policy() { return kBuiltinPolicy; }
std::string_view builtin_remote_worker_policy() { return kBuiltinRemotePolicy; }

Result<Policy> builtin_policy_for(bool remote) {
    auto base = parse_policy(kBuiltinPolicy, kBuiltinWorkerPolicyOrigin);
    if (!base || !remote) return base;
    return extend_policy(*base, kBuiltinRemotePolicy, kBuiltinRemoteWorkerPolicyOrigin);
}

std::string describe(const Rule& rule) {
    std::string out = rule.syscall;
    for (std::size_t i = 0; i < rule.conditions.size(); ++i) out += (i == 0 ? " " : " && ") + rule.conditions[i].text;
    return out;
}

// ---- Compiling -------------------------------------------------------------------

std::vector<std::pair<std::uint64_t, std::uint64_t>> at_least_blocks(std::uint64_t value) {
    constexpr std::uint64_t kEnd = std::uint64_t{1} << 32;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> blocks;
    for (std::uint64_t start = value; start < kEnd;) {
        // The largest power of two that start is aligned to and that stays below 2^32.
        std::uint64_t size = start == 0 ? kEnd : (start & (~start + 1));
        while (start + size > kEnd) size >>= 1;
        blocks.emplace_back(~(size - 1), start);
        start += size;
    }
    return blocks;
}

struct Filter::Context {
    scmp_filter_ctx ctx = nullptr;
    ~Context() {
        if (ctx != nullptr) seccomp_release(ctx);
    }
};

Filter::Filter(std::unique_ptr<Context> ctx) : ctx_(std::move(ctx)) {}
Filter::Filter(Filter&&) noexcept = default;
Filter& Filter::operator=(Filter&&) noexcept = default;
Filter::~Filter() = default;

Status Filter::load() {
    // libseccomp returns -errno.
    if (const int rc = seccomp_load(ctx_->ctx); rc < 0) return sys_error(-rc, "loading the seccomp filter");
    return {};
}

Result<Filter> compile(const Policy& policy, pid_t self_pid) {
    auto context = std::make_unique<Filter::Context>();
    context->ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (context->ctx == nullptr) return sys_error(ENOMEM, "creating a seccomp filter");
    // A syscall made through another ABI (x32, i386 int 0x80) must not slip past a
    // filter written for the native one.
    if (const int rc = seccomp_attr_set(context->ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0)
        return sys_error(-rc, "setting the seccomp filter's action for other architectures");
    if (const int rc = seccomp_attr_set(context->ctx, SCMP_FLTATR_CTL_TSYNC, 1); rc < 0)
        return sys_error(-rc, "asking for the seccomp filter on every thread (TSYNC)");
    for (const Rule& rule : policy.rules) {
        std::vector<scmp_arg_cmp> cmps;
        const Condition* at_least = nullptr;
        for (const Condition& c : rule.conditions) {
            if (c.self_pid)
                cmps.push_back({c.arg, SCMP_CMP_EQ, static_cast<scmp_datum_t>(self_pid), 0});
            else if (c.op == Condition::Op::equal)
                cmps.push_back({c.arg, SCMP_CMP_EQ, c.value, 0});
            else if (c.op == Condition::Op::within)  // no bit outside the value: (arg & ~value) == 0
                cmps.push_back({c.arg, SCMP_CMP_MASKED_EQ, ~c.value, 0});
            else
                at_least = &c;
        }
        // '>=' as one rule per aligned block of [value, 2^32), each a masked compare of
        // all 64 bits: a plain SCMP_CMP_GE would let 0x1'0000'0002 through for an int
        // argument the kernel truncates to 2.
        std::vector<std::pair<std::uint64_t, std::uint64_t>> blocks;  // mask, value
        if (at_least != nullptr)
            blocks = at_least_blocks(at_least->value);
        else
            blocks.emplace_back(0, 0);
        for (const auto& [mask, value] : blocks) {
            std::vector<scmp_arg_cmp> all = cmps;
            if (at_least != nullptr) all.push_back({at_least->arg, SCMP_CMP_MASKED_EQ, mask, value});
            const int rc = seccomp_rule_add_exact_array(context->ctx, SCMP_ACT_ALLOW, rule.number,
                                                        static_cast<unsigned>(all.size()), all.data());
            if (rc < 0)
                return sys_error(-rc, fmt::format("{}:{}: compiling '{}'", rule.origin, rule.line, describe(rule)));
        }
    }
    return Filter(std::move(context));
}

}  // namespace cfs::seccomp
