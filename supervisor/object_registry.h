// The supervisor's copy of every open object's anon fd. Holding it means the kernel
// keeps an object open while any worker lives or dies, and lets any worker answer a
// READ for an object another worker opened.
//
// It also remembers which worker slots hold a copy, as far as the supervisor knows
// (the opener, and those it sent one with ObjectInfo or ObjectShare): so no worker
// is sent a second copy of an object (common/worker_protocol.h, ObjectShare), and a
// worker's share of copies stays bounded. A worker may close a copy without saying
// so (one it had no room for): "holds" may be too high, never too low, and the
// worker then asks with ObjectQuery, which is always answered.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "common/worker_protocol.h"

namespace cfs::supervisor {

struct RegisteredObject {
    wire::ObjectDescription description;
    unique_fd anon_fd;
    unsigned opener = 0;   // worker slot that read the OPEN
    bool copened = false;  // the opener reported the kernel accepted its copen
    std::set<unsigned> holders;  // worker slots holding a copy (the opener among them)
};

class ObjectRegistry {
public:
    // False if the id is already registered (a worker lying or confused).
    [[nodiscard]] bool add(wire::ObjectDescription description, unique_fd anon_fd, unsigned opener);
    [[nodiscard]] RegisteredObject* find(std::uint32_t object_id);
    // Closes our copy; false if unknown.
    bool remove(std::uint32_t object_id);
    // Closes the copies `drop` picks and returns their ids.
    [[nodiscard]] std::vector<std::uint32_t> drop_if(
        const std::function<bool(std::uint32_t id, const RegisteredObject& object)>& drop);

    // `slot` was handed a copy of the object; false if the object is unknown or the
    // slot held one already.
    bool add_holder(std::uint32_t object_id, unsigned slot);
    // The process in `slot` is gone, and its copies with it.
    void drop_holder(unsigned slot);
    // How many registered objects `slot` holds a copy of.
    [[nodiscard]] std::size_t held_by(unsigned slot) const;

    [[nodiscard]] std::size_t size() const { return objects_.size(); }
    [[nodiscard]] const std::map<std::uint32_t, RegisteredObject>& all() const { return objects_; }

private:
    void erase_holders(const RegisteredObject& object);

    std::map<std::uint32_t, RegisteredObject> objects_;
    std::map<unsigned, std::size_t> held_;  // slot -> objects it holds (no zero entries)
};

}  // namespace cfs::supervisor
