#include "common/result.h"

#include <cstring>

namespace cfs {

std::string Error::message() const {
    if (errnum == 0) return context;
    return context + ": " + std::strerror(errnum);
}

Error sys_error(std::string context) { return Error{errno, std::move(context)}; }
Error sys_error(int errnum, std::string context) { return Error{errnum, std::move(context)}; }
Error logic_error(std::string context) { return Error{0, std::move(context)}; }

}  // namespace cfs
