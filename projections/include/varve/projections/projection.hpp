// Projections: processors that read the log from their checkpoint, then
// follow the heads the storage actor publishes, and hand each event to a
// handler that builds a read model.
//
// Two modes:
// - exactly_once: the read model is a view (a named table of the same
//   store). The handler writes into a view_batch; the view writes and the new
//   cursor go to the storage actor and commit in one transaction, so after a
//   crash at any moment view and cursor agree: no event lost, none applied
//   twice.
// - at_least_once: for external effects (mail, queues, other databases). The
//   cursor is saved every `checkpoint_every` events or `checkpoint_interval`,
//   and at stop; after a crash the unsaved tail is delivered again, so the
//   handler should use the event's global position as its idempotency key.
//
// A notification only says how far the log goes: a burst of commits costs
// one wake-up, and the projection reads in batches of `batch_events` from its
// own position, so nothing is skipped or handled twice when it switches from
// catching up to live while appends go on.
//
// A projection actor is a thin actor around a projection_engine (engine.hpp,
// no CAF): the same engine runs over the store of this process
// (spawn_projection below) or over a store service in another process
// (varve::remote::spawn_remote_projection), with the same failure policy,
// dead letters, states and control requests.
#pragma once

#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <memory>
#include <string>

#include <varve/actors/storage_actor.hpp>

#include "varve/projections/spec.hpp"
#include "varve/projections/type_ids.hpp"

namespace varve {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, projection_status& x) {
  return f(caf::meta::type_name("varve::projection_status"), x.name, x.mode, x.state, x.error,
           x.position, x.head, x.lag_events, x.lag_seconds, x.handled, x.wakeups, x.dead_letters,
           x.attempt, x.attempts);
}

/// The typed interface of a projection actor:
/// - (committed_atom, head): the log reaches `head` (from the storage actor
///   or the store service);
/// - (status_atom) -> projection_status;
/// - (pause_atom), (resume_atom): stop and go on reading;
/// - (reset_atom, position): move the cursor to `position` (view kept);
/// - (rebuild_atom): clear the view and the cursor, replay from the start;
///   each answers with the status after the change, once it is stored;
/// - (control_error_atom, why) -> projection_status: a control request for
///   this projection did not read and is not carried out; `why` becomes its
///   last error, stored with its cursor (a failed projection keeps the error
///   it failed with), and it goes on as it was;
/// - (continue_atom | retry_atom | checkpoint_atom | source_timer_atom,
///   ticket): internal, the engine's and the log source's timers.
using projection_actor =
    caf::typed_actor<caf::reacts_to<committed_atom, std::uint64_t>,
                     caf::replies_to<status_atom>::with<projection_status>,
                     caf::replies_to<pause_atom>::with<projection_status>,
                     caf::replies_to<resume_atom>::with<projection_status>,
                     caf::replies_to<reset_atom, std::uint64_t>::with<projection_status>,
                     caf::replies_to<rebuild_atom>::with<projection_status>,
                     caf::replies_to<control_error_atom, std::string>::with<projection_status>,
                     caf::reacts_to<continue_atom, std::uint64_t>,
                     caf::reacts_to<retry_atom, std::uint64_t>,
                     caf::reacts_to<checkpoint_atom, std::uint64_t>,
                     caf::reacts_to<source_timer_atom, std::uint64_t>>;

/// Spawns a projection over `store` (read in this process, zero copy) that
/// writes through `storage`. It loads its cursor, subscribes to the storage
/// actor's heads and catches up. A cursor whose stored state does not read
/// (another process wrote it in another shape) still gives the position: the
/// projection goes on from there, with the problem as its last error. A
/// cursor that cannot be read at all stops it in state "failed". Stop it
/// with caf::anon_send_exit(p, caf::exit_reason::user_shutdown): it stores
/// its state ("stopped"; "paused" and "failed" stay), and an at-least-once
/// projection saves its cursor.
projection_actor spawn_projection(caf::actor_system& sys, std::shared_ptr<const event_store> store,
                                  storage_actor storage, projection_spec spec);

}  // namespace varve
