// A projection host: runs an exactly-once projection in this process over
// the log of a store service in another process, into a LOCAL read model.
//
// The view and the checkpoint live in this process's own store (its own
// storage actor): each batch's view writes and the new cursor commit in one
// transaction there, guarded by the previous cursor (cursor_update::
// expected), so the local view has every remote event exactly once.
//
// The host connects (handshake, see client.hpp), subscribes to the service's
// heads, reads the remote log from its checkpoint in batches (catch-up),
// then follows the heads (live). When the service goes away (connection
// lost, request timeout) it reconnects with exponential backoff and resumes
// from its checkpoint; when it is stopped and started again, it resumes
// from the checkpoint in its store.
#pragma once

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <varve/projections/projection.hpp>

#include "varve/remote/client.hpp"

namespace varve::remote {

struct remote_projection_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7410;
  std::chrono::milliseconds request_timeout{10000};
  std::chrono::milliseconds min_backoff{50};  ///< first reconnect delay, doubled each time
  std::chrono::milliseconds max_backoff{2000};
};

/// - (committed_atom, head): from the service (over the network);
/// - (status_atom) -> projection_status;
/// - (continue_atom), (retry_atom, generation): internal.
using remote_projection_actor =
    caf::typed_actor<caf::reacts_to<committed_atom, std::uint64_t>,
                     caf::replies_to<status_atom>::with<projection_status>,
                     caf::reacts_to<continue_atom>, caf::reacts_to<retry_atom, std::uint64_t>>;

/// Spawns a host (detached: connecting blocks its thread) of `spec`, an
/// exactly-once projection (spec.mode must be delivery::exactly_once; its
/// failure policy is "stop": a handler error stops it in state "failed"),
/// writing through `local_storage` into `local_store`. Stop it with
/// caf::anon_send_exit(h, caf::exit_reason::user_shutdown), before the
/// local storage actor.
remote_projection_actor spawn_remote_projection(caf::actor_system& sys,
                                                std::shared_ptr<const event_store> local_store,
                                                storage_actor local_storage, projection_spec spec,
                                                remote_projection_options opts);

}  // namespace varve::remote
