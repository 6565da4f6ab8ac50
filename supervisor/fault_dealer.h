// Test builds only: decides which worker starts get a fault point (fault_point.h),
// from the file named by [testing] fault_file, read at every start:
//   "<fault point> [<how many workers>]"   e.g. "read-mid-copy 1"
// Without a count, every worker started while the file exists gets it; with one,
// that many do (counted since the file was last written). Deleting the file lifts
// the fault for workers started afterwards.
#pragma once

#include <string>
#include <string_view>

#include "common/fault_point.h"
#include "common/result.h"

namespace cfs::supervisor {

class FaultDealer {
public:
    explicit FaultDealer(std::string path) : path_(std::move(path)) {}
    // FaultPoint::none when the file is absent, or its count is used up. A file that
    // does not parse is an Error naming the file and the line.
    [[nodiscard]] Result<FaultPoint> next_worker();
    // The same decision from text already read; for tests. `version` identifies one
    // writing of the file (inode and mtime): a new one restarts the count.
    [[nodiscard]] Result<FaultPoint> next_worker_from(const std::string& content, std::string_view version = {});

private:
    std::string path_;
    std::string last_content_;
    std::string last_version_;
    unsigned handed_out_ = 0;
};

}  // namespace cfs::supervisor
