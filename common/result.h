// Result<T>: the error style of every library layer in common/, worker/ and
// supervisor/. Functions return a value or an Error; only the top of each program
// decides what to log or whether to exit. Nothing below main() throws on purpose
// (a std::bad_alloc is left to terminate the process, which the supervisor treats
// like any other crash).
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace cfs {

struct Error {
    int errnum = 0;        // errno at a syscall boundary, 0 for a logical error
    std::string context;   // what was being done, e.g. "opening /dev/cachefiles"

    // "opening /dev/cachefiles: Device or resource busy"
    [[nodiscard]] std::string message() const;
};

// An Error for the syscall that just failed: captures errno now.
[[nodiscard]] Error sys_error(std::string context);
[[nodiscard]] Error sys_error(int errnum, std::string context);
[[nodiscard]] Error logic_error(std::string context);

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

    [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    T&& operator*() && { return std::move(*this).value(); }

    const Error& error() const& { return std::get<1>(v_); }
    Error&& error() && { return std::get<1>(std::move(v_)); }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), failed_(true) {}

    [[nodiscard]] bool ok() const noexcept { return !failed_; }
    explicit operator bool() const noexcept { return ok(); }
    const Error& error() const& { return error_; }
    Error&& error() && { return std::move(error_); }

private:
    Error error_;
    bool failed_ = false;
};

using Status = Result<void>;

}  // namespace cfs
