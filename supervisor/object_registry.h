// The supervisor's copy of every open object's anon fd. Holding it means the kernel
// keeps an object open while any worker lives or dies, and lets any worker answer a
// READ for an object another worker opened.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
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

    [[nodiscard]] std::size_t size() const { return objects_.size(); }
    [[nodiscard]] const std::map<std::uint32_t, RegisteredObject>& all() const { return objects_; }

private:
    std::map<std::uint32_t, RegisteredObject> objects_;
};

}  // namespace cfs::supervisor
