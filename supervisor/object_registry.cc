#include "supervisor/object_registry.h"

namespace cfs::supervisor {

bool ObjectRegistry::add(wire::ObjectDescription description, unique_fd anon_fd, unsigned opener) {
    const auto id = description.object_id;
    return objects_.try_emplace(id, RegisteredObject{std::move(description), std::move(anon_fd), opener, false})
        .second;
}

RegisteredObject* ObjectRegistry::find(std::uint32_t object_id) {
    auto it = objects_.find(object_id);
    return it == objects_.end() ? nullptr : &it->second;
}

bool ObjectRegistry::remove(std::uint32_t object_id) { return objects_.erase(object_id) > 0; }

std::vector<std::uint32_t> ObjectRegistry::drop_if(
    const std::function<bool(std::uint32_t id, const RegisteredObject& object)>& drop) {
    std::vector<std::uint32_t> dropped;
    for (auto it = objects_.begin(); it != objects_.end();) {
        if (drop(it->first, it->second)) {
            dropped.push_back(it->first);
            it = objects_.erase(it);
        } else {
            ++it;
        }
    }
    return dropped;
}

}  // namespace cfs::supervisor
