// The decider: decision models (varve/actors/decision.hpp) run as an actor,
// their appends committed by the storage actor in its group commits.
//
// Keying. There is one decider actor per decision model type (the runtime
// spawns it on first use). It takes every command of that model and keeps
// a set of appends in flight. A command is decided (its boundary read and
// folded, decide() called, the append sent) only when its boundary's query
// matches none of the events in flight; otherwise it waits until those
// appends are answered, then reads what they appended. So:
//   - a command whose boundary takes in what an earlier command is
//     appending (the same course, the same student) waits for it and
//     decides on its events; those of one boundary go in arrival order;
//   - in one process, a decider meets no conflict from its own commands;
//   - commands that do not touch run at once, and their appends share the
//     storage actor's group commits.
// Nothing orders commands of different boundaries beyond that: one that
// no append in flight touches may start before an earlier one that waits.
// Writers the decider does not see (another process on the store, another
// decider, direct appends) are settled by the append condition: of two
// decisions over overlapping boundaries, in one batch or in two, exactly
// one commits; the other meets wrong_expected_version, and the decider
// reads its boundary again and decides again, up to
// decision_options::max_retries times, before answering the conflict. A
// retried command goes before the ones waiting.
//
// The decider reads and folds in its own turn (read transactions, zero
// copy): boundaries are meant to be small (the events of one course, one
// student), read through the store's indexes. The model's code runs on the
// decider's thread, one command at a time; an exception from it fails that
// command with errc::handler_failed, and the decider goes on.
//
// Answers: a decision_reply, or the error: decide()'s (errc::rejected with
// the model's reason), invalid_argument (decided events without a stream,
// with bad tags, or that the codec cannot encode; nothing is stored),
// corruption / shredded (an event of the boundary the model cannot read),
// wrong_expected_version (conflicts on every attempt), handler_failed, the
// storage actor's errors (storage_full, io_error, failed_state), and
// unavailable when the decider stops first (for an append in flight: it
// may or may not have been applied; for a command still waiting: nothing
// was). Commands sent after it stopped fail with
// caf::sec::request_receiver_down (unavailable through error_from).
//
// Lifetimes. The decider shares ownership of the store through
// decision_context. It has no timers: caf::anon_send_exit stops it at
// once. Stop it before the storage actor, or its appends fail with
// errc::unavailable.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <memory>

#include "varve/actors/decision.hpp"
#include "varve/actors/detail/aggregate_interface.hpp"
#include "varve/actors/storage_actor.hpp"

namespace varve {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, decision_reply& x) {
  return f(caf::meta::type_name("varve::decision_reply"), x.first_position, x.position, x.events,
           x.read_at, x.attempts);
}

/// What a decider reports about itself.
struct decider_stats {
  std::uint64_t commands = 0;   ///< commands taken
  std::uint64_t appended = 0;   ///< decisions whose events committed
  std::uint64_t refused = 0;    ///< answered errc::rejected
  std::uint64_t failed = 0;     ///< answered another error
  std::uint64_t retries = 0;    ///< reloads after a conflict
  std::uint64_t waiting = 0;    ///< commands waiting now
  std::uint64_t in_flight = 0;  ///< appends in flight now
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, decider_stats& x) {
  return f(caf::meta::type_name("varve::decider_stats"), x.commands, x.appended, x.refused,
           x.failed, x.retries, x.waiting, x.in_flight);
}

/// The decider of a decision model: (command_atom, local_command<command>)
/// answered with a decision_reply or the error (see above); stats_atom
/// answered with its decider_stats. Commands stay in the process (no
/// inspect overload needed).
template <class D>
using decider_actor =
    caf::typed_actor<typename caf::replies_to<command_atom, local_command<typename D::command>>::
                         template with<decision_reply>,
                     caf::replies_to<stats_atom>::with<decider_stats>>;

/// What a decider needs: the store (reads, in this process) and its
/// storage actor (writes).
struct decision_context {
  std::shared_ptr<const event_store> store;
  storage_actor storage;
  decision_options options;
};

}  // namespace varve

#include "varve/actors/detail/decider_actor.hpp"

namespace varve {

/// Spawns the decider of decision model D. Never fails; errors come with
/// each command's answer. Two deciders of one model (in one process or
/// two) are safe: their overlapping decisions are settled by the append
/// condition. It runs until stopped with caf::anon_send_exit.
template <decision_model D>
decider_actor<D> spawn_decider(caf::actor_system& sys, decision_context ctx) {
  return sys.spawn(detail::decider_behavior<D>, std::move(ctx));
}

}  // namespace varve
