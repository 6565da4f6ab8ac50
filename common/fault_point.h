// Test-only fault injection. In a build with CFS_FAULT_INJECTION (off by default), a
// worker handed a fault point in its Init crashes (abort) the first time it gets
// there, so the real-kernel tests can kill a worker at each step of the protocol.
// In other builds reach() compiles to nothing and a worker refuses such an Init.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cfs {

enum class FaultPoint : std::uint32_t {
    none = 0,
    open_received = 1,         // read an OPEN, told no one yet
    open_before_copen = 2,     // the supervisor holds the anon fd; copen not written
    open_after_copen = 3,      // copen written; the supervisor not told
    read_mid_copy = 4,         // the first block of a READ's range written, not the rest
    read_before_complete = 5,  // all written; READ_COMPLETE not issued
    close_received = 6,        // read a CLOSE, told no one yet
    // Not a worker's: the supervisor's main loop hangs at its next worker start (so
    // systemd's watchdog must catch it).
    supervisor_hang = 7,
    // Not a crash: once sandboxed and Ready, the worker runs the attack script
    // "hostile.script" from its blob directory (tests/vm/tools/hostile_script.h), then
    // serves as usual unless an attack ended it.
    hostile = 8,
    // Not a crash: the worker's first READ stalls for kReadStallSeconds before its
    // data is copied, then goes on (a reader that waits; stuck-request warnings).
    read_stall = 9,
};

inline constexpr int kReadStallSeconds = 45;

inline constexpr bool kFaultInjectionBuilt =
#ifdef CFS_FAULT_INJECTION
    true;
#else
    false;
#endif

[[nodiscard]] std::optional<FaultPoint> parse_fault_point(std::string_view name);
[[nodiscard]] std::string_view fault_point_name(FaultPoint p);
// Every name, comma-separated (for error messages).
[[nodiscard]] std::string known_fault_points();

// The point this process dies at (worker only).
void arm_fault(FaultPoint p);
#ifdef CFS_FAULT_INJECTION
void reach(FaultPoint here);
[[nodiscard]] bool armed(FaultPoint p);
#else
inline void reach(FaultPoint) {}
[[nodiscard]] inline bool armed(FaultPoint) { return false; }
#endif

}  // namespace cfs
