// A projection host: runs a projection in this process over the log of a
// store service in another process, into a LOCAL read model.
//
// It is the projection of spawn_projection (varve/projections/projection.hpp)
// with another log source: the same engine, modes, failure policy (retries
// with backoff, then stop or skip to the dead-letter view), states and
// control requests (pause, resume, reset, rebuild; also from the control
// view, through spawn_projection_manager with remote_projections below).
// The view, the dead letters and the checkpoint live in this process's own
// store (its own storage actor): exactly-once, each batch's view writes and
// the new cursor commit in one transaction there, guarded by the previous
// cursor, so the local view has every remote event exactly once.
//
// The host connects (handshake, see client.hpp), subscribes to the service's
// heads, reads the remote log from its checkpoint in batches (catch-up),
// then follows the heads (live). When the service goes away (connection
// lost, request timeout) it reconnects with exponential backoff and resumes
// from its position, its status saying why in the meantime; when it is
// stopped and started again, it resumes from the checkpoint in its store.
#pragma once

#include <caf/fwd.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <varve/projections/manager.hpp>
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

/// A projection host is a projection actor.
using remote_projection_actor = projection_actor;

/// Spawns a host of `spec` (either mode) over the service at
/// opts.host:opts.port, writing through `local_storage` into `local_store`:
/// an event-based actor on the scheduler, which connects, shakes hands and
/// subscribes without blocking a thread. A service that is not there yet
/// is retried with backoff; each failed attempt is its status's error, and
/// a connect not answered within opts.request_timeout says "still trying".
/// A host has one connect in flight at a time: CAF 0.17's middleman makes
/// TCP connections one after the other, blocking, so an address that drops
/// connection attempts (a firewall, a hung service) holds up every host of
/// the actor system that connects meanwhile, and the actor system's
/// shutdown, until the kernel gives up on it (about two minutes by
/// default). Give such hosts an actor system (a process) of their own. Stop it with
/// caf::anon_send_exit(h, caf::exit_reason::user_shutdown), before the local storage actor.
projection_actor spawn_remote_projection(caf::actor_system& sys,
                                         std::shared_ptr<const event_store> local_store,
                                         storage_actor local_storage, projection_spec spec,
                                         remote_projection_options opts);

/// Projections over the service at opts.host:opts.port for a manager:
///   spawn_projection_manager(sys, local_store, local_storage, specs,
///                            remote_projections(local_store, local_storage, opts));
projection_spawner remote_projections(std::shared_ptr<const event_store> local_store,
                                      storage_actor local_storage, remote_projection_options opts);

}  // namespace varve::remote
