#include "supervisor/spare_objects.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>

#include "common/log.h"

namespace cfs::supervisor {

bool wants_stock(const WorkerSlot& w) {
    return w.running() && w.socket && w.state == WorkerState::paused && !w.retiring && !w.dismissed && !w.stocked;
}

void stock_spare(SupervisorState& state, WorkerSlot& spare) {
    spare.stocked = true;
    const auto& objects = state.objects.all();
    std::size_t queued = 0;
    // Newest first: kernel object ids grow (xa_alloc_cyclic), and the objects most
    // recently opened are the likeliest to be read.
    for (auto it = objects.rbegin(); it != objects.rend(); ++it) {
        if (!it->second.copened || it->second.holders.contains(spare.id)) continue;
        spare.to_share.push_back(it->first);
        ++queued;
    }
    log::debug("worker {} (pid {}) is a spare: {} object(s) to hand it ahead of need", spare.id, spare.pid, queued);
}

void share_with_spares(SupervisorState& state, std::uint32_t object_id) {
    for (auto& w : state.workers)
        // Bounded for a spare that never reads its socket: a longer queue would hold
        // mostly objects closed since, and a READ can still ask for any object.
        if (w.stocked && w.state == WorkerState::paused && w.running() && w.to_share.size() < state.max_objects)
            w.to_share.push_back(object_id);
}

Result<bool> send_shares(SupervisorState& state, WorkerSlot& w) {
    while (!w.to_share.empty()) {
        const std::uint32_t id = w.to_share.front();
        const RegisteredObject* object = state.objects.find(id);
        // Closed since it was queued, or a copy came another way (ObjectQuery).
        if (object == nullptr || !object->copened || object->holders.contains(w.id)) {
            w.to_share.pop_front();
            continue;
        }
        if (state.objects.held_by(w.id) >= wire::kMaxSharedObjects) {
            log::debug("worker {} (pid {}) holds {} objects, the most it is handed ahead of need; {} more are left "
                       "to ObjectQuery",
                       w.id, w.pid, state.objects.held_by(w.id), w.to_share.size());
            w.to_share.clear();
            break;
        }
        if (state.socket_has_room && !state.socket_has_room(w.socket.get())) return false;
        wire::ObjectShare share;
        static_cast<wire::ObjectDescription&>(share) = object->description;
        const int fds[] = {object->anon_fd.get()};
        if (auto sent = state.send(w, share, fds); !sent) {
            if (sent.error().errnum == EAGAIN) return false;  // full after all: wait for room
            return std::move(sent).error();
        }
        (void)state.objects.add_holder(id, w.id);
        ++state.objects_shared;
        w.to_share.pop_front();
    }
    return true;
}

bool send_queue_has_room(int sock) {
    int queued = 0, buffer = 0;
    socklen_t len = sizeof buffer;
    if (::ioctl(sock, SIOCOUTQ, &queued) < 0 || ::getsockopt(sock, SOL_SOCKET, SO_SNDBUF, &buffer, &len) < 0)
        return true;  // cannot tell: the send says (EAGAIN waits for room)
    return queued < buffer / 2;
}

}  // namespace cfs::supervisor
