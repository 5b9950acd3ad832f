// The projection manager: owns the projections of an application, lists
// them and pauses, resumes, resets and rebuilds them.
//
// It also applies the requests that `varvectl projections pause|resume|
// reset|rebuild NAME` leaves in the view "varve.projection_control" (looked at
// every `poll_interval`, and when a projection starts; protocol.hpp has the
// format), and nudges its projections when another process has appended to
// the store (the storage actor of this process only announces its own
// commits).
//
// Those requests come from other processes: one that does not read (not
// JSON, another shape, an unknown command, a reset without an unsigned
// position) is not carried out; its projection records why as its last
// error (in the listing, and stored with its cursor for varvectl), then the
// request is erased. The projection goes on as it was.
#pragma once

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "varve/projections/projection.hpp"
#include "varve/projections/type_ids.hpp"

namespace varve {

/// - (list_atom) -> vector<projection_status>, in the order given at spawn;
/// - (status_atom, name) -> projection_status;
/// - (pause_atom | resume_atom | rebuild_atom, name) -> projection_status;
/// - (reset_atom, name, position) -> projection_status;
///   an unknown name is errc::not_found;
/// - (poll_atom): internal.
using projection_manager = caf::typed_actor<
    caf::replies_to<list_atom>::with<std::vector<projection_status>>,
    caf::replies_to<status_atom, std::string>::with<projection_status>,
    caf::replies_to<pause_atom, std::string>::with<projection_status>,
    caf::replies_to<resume_atom, std::string>::with<projection_status>,
    caf::replies_to<rebuild_atom, std::string>::with<projection_status>,
    caf::replies_to<reset_atom, std::string, std::uint64_t>::with<projection_status>,
    caf::reacts_to<poll_atom>>;

/// Spawns the manager and the projections of `specs`. Stopping it
/// (caf::anon_send_exit) stops them; stop it before the storage actor, so
/// that their last checkpoints are committed.
projection_manager spawn_projection_manager(
    caf::actor_system& sys, std::shared_ptr<const event_store> store, storage_actor storage,
    std::vector<projection_spec> specs,
    std::chrono::milliseconds poll_interval = std::chrono::milliseconds(500));

/// Starts one projection for a manager, e.g. one whose log is a store
/// service in another process (varve::remote::remote_projections).
using projection_spawner = std::function<projection_actor(caf::actor_system&, projection_spec)>;

/// The same, with projections that `spawn` starts, whose views, cursors and
/// control requests are in `store` (written through `storage`) while their
/// log is elsewhere: the manager does not nudge them with `store`'s head.
projection_manager spawn_projection_manager(
    caf::actor_system& sys, std::shared_ptr<const event_store> store, storage_actor storage,
    std::vector<projection_spec> specs, projection_spawner spawn,
    std::chrono::milliseconds poll_interval = std::chrono::milliseconds(500));

}  // namespace varve
