#include "supervisor/object_registry.h"

namespace cfs::supervisor {

bool ObjectRegistry::add(wire::ObjectDescription description, unique_fd anon_fd, unsigned opener) {
    const auto id = description.object_id;
    const bool added =
        objects_.try_emplace(id, RegisteredObject{std::move(description), std::move(anon_fd), opener, false, {opener}})
            .second;
    if (added) ++held_[opener];
    return added;
}

RegisteredObject* ObjectRegistry::find(std::uint32_t object_id) {
    auto it = objects_.find(object_id);
    return it == objects_.end() ? nullptr : &it->second;
}

void ObjectRegistry::erase_holders(const RegisteredObject& object) {
    for (const unsigned slot : object.holders)
        if (auto it = held_.find(slot); it != held_.end() && --it->second == 0) held_.erase(it);
}

bool ObjectRegistry::remove(std::uint32_t object_id) {
    auto it = objects_.find(object_id);
    if (it == objects_.end()) return false;
    erase_holders(it->second);
    objects_.erase(it);
    return true;
}

std::vector<std::uint32_t> ObjectRegistry::drop_if(
    const std::function<bool(std::uint32_t id, const RegisteredObject& object)>& drop) {
    std::vector<std::uint32_t> dropped;
    for (auto it = objects_.begin(); it != objects_.end();) {
        if (drop(it->first, it->second)) {
            dropped.push_back(it->first);
            erase_holders(it->second);
            it = objects_.erase(it);
        } else {
            ++it;
        }
    }
    return dropped;
}

bool ObjectRegistry::add_holder(std::uint32_t object_id, unsigned slot) {
    RegisteredObject* object = find(object_id);
    if (object == nullptr || !object->holders.insert(slot).second) return false;
    ++held_[slot];
    return true;
}

void ObjectRegistry::drop_holder(unsigned slot) {
    if (held_.erase(slot) == 0) return;
    for (auto& [id, object] : objects_) object.holders.erase(slot);
}

std::size_t ObjectRegistry::held_by(unsigned slot) const {
    const auto it = held_.find(slot);
    return it == held_.end() ? 0 : it->second;
}

}  // namespace cfs::supervisor
