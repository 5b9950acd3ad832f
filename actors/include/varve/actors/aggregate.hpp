// Aggregates: one actor per stream, behind a registry per aggregate type.
//
// An aggregate type is a plain struct of static functions, a pure fold:
//
//   struct account {
//     static constexpr std::string_view category = "account";   // streams "account-<id>"
//     struct state { ... };
//     using command = std::variant<open, deposit, withdraw>;
//     using event = std::variant<opened, deposited, withdrawn>;
//     static void apply(state&, const event&);
//     static varve::decision<event> decide(const state&, const command&);
//     // optional: snapshots of `state` (VARVE_JSON(state, ...); detail/state_codec.hpp)
//     static constexpr std::uint32_t snapshot_schema = 1;
//     // optional: using codec = my_codec;   (default: json_codec<event>, codec.hpp)
//   };
//
// decide() runs without I/O and returns the events to append, or an error
// (use errc::rejected for a broken domain rule). The aggregate actor of a
// stream hydrates from the latest snapshot plus the events after it, handles
// one command at a time (later requests wait in a queue of its own, in
// order; see detail/work_queue.hpp), appends with
// exact(version), and on a version conflict reloads the new events and
// decides again, up to `max_retries` times, before answering with the
// conflict. It writes a snapshot every `snapshot_every` versions when the
// type declares `snapshot_schema`; a snapshot of another schema, or one that
// does not decode, is ignored (and reported through varve::log).
//
// Hydration. The snapshot loads in the actor's first turn, and so do up to
// 64 events after it. A longer tail is applied on a thread of its own (a
// detached helper actor), so that other actors of the scheduler go on while
// it reads and folds; the aggregate's requests wait, in order, until it is
// done. Either way an actor hydrates exactly once.
//
// Stopping. When an aggregate actor stops (an exit, a crash, a
// passivation), every request it has not answered is answered: those
// waiting with request_receiver_down (nothing of them was applied; a
// registry sends them to a fresh actor), the one whose append is in flight
// with errc::unavailable (it may or may not have been applied: read the
// stream to know).
//
// An event it cannot read stops the hydration there: one the codec does not
// decode (errc::corruption), or one the store refuses (the store's error,
// e.g. errc::corruption or errc::auth_failed). The actor stays up and
// answers each command (and stats request) with that error, which names the
// stream, the event's version and position (and its type when the record
// itself reads), after trying again to read on from the last event it
// applied; it decides nothing meanwhile. A shredded stream refuses every
// command with errc::shredded.
//
// The registry routes (command_atom, id, command) to the stream's actor,
// spawning it on demand; an actor idle for `idle_timeout` passivates (quits),
// at most `max_alive` live at once (the least recently used goes first), and
// one that crashed is rebuilt from the log on the next command. A command
// that reaches an actor as it passivates goes to a fresh one. A command in
// flight in an actor that crashes is answered with errc::unavailable: it may
// or may not have been appended.
//
// Threads. apply(), decide() and the codec are called from CAF's threads:
// for one actor never two at once, but for different actors (different
// streams, or lone actors racing on one) concurrently, so they must not
// share mutable data. apply() may run on the hydration helper's thread. An
// exception from them stops (crashes) the actor. The handles (aggregate_actor, registry_actor) are
// values that any thread may copy and send to.
//
// Lifetimes. Every aggregate actor (and its hydration helper) shares
// ownership of the store through aggregate_context: the store stays open
// until the last of them has quit. The registry stops its aggregate actors
// when it stops; stop registries and lone aggregate actors before the
// storage actor, or their commands fail with errc::unavailable.
#pragma once

#include <caf/actor_system.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "varve/actors/codec.hpp"
#include "varve/actors/detail/aggregate_interface.hpp"
#include "varve/actors/error.hpp"
#include "varve/actors/storage_actor.hpp"

namespace varve {

/// What decide() returns: the new events, or why the command is refused.
template <class Event>
using decision = result<std::vector<Event>>;

/// The answer to a command that succeeded.
struct command_reply {
  stream_version version = 0;    ///< the stream's version after the command
  global_position position = 0;  ///< position of the last event appended (0: none)
  std::uint32_t events = 0;      ///< how many events the command appended
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, command_reply& x) {
  return f(caf::meta::type_name("varve::command_reply"), x.version, x.position, x.events);
}

/// Counters of a registry.
struct registry_stats {
  std::uint64_t alive = 0;       ///< aggregate actors live now
  std::uint64_t spawned = 0;     ///< aggregate actors started
  std::uint64_t passivated = 0;  ///< idle or evicted ones that quit
  std::uint64_t crashed = 0;     ///< ones that stopped for any other reason
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, registry_stats& x) {
  return f(caf::meta::type_name("varve::registry_stats"), x.alive, x.spawned, x.passivated,
           x.crashed);
}

/// What an aggregate actor reports about itself.
struct aggregate_info {
  std::string stream;
  stream_version version = 0;
  stream_version snapshot_version = 0;  ///< version of the snapshot it hydrated from (0: none)
  std::uint64_t replayed = 0;           ///< events applied while hydrating, after the snapshot
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, aggregate_info& x) {
  return f(caf::meta::type_name("varve::aggregate_info"), x.stream, x.version, x.snapshot_version,
           x.replayed);
}

template <class A>
concept aggregate = requires(typename A::state& s, const typename A::state& cs,
                             const typename A::event& e, const typename A::command& c) {
  { A::category } -> std::convertible_to<std::string_view>;
  A::apply(s, e);
  { A::decide(cs, c) } -> std::same_as<decision<typename A::event>>;
};

struct aggregate_options {
  unsigned max_retries = 3;  ///< reloads after a conflict before giving up
  /// Snapshot every N versions (0: never), for aggregate types that declare
  /// `snapshot_schema`; the same default as varve_config's snapshot-every.
  std::uint64_t snapshot_every = 100;
  std::chrono::milliseconds idle_timeout{60000};  ///< passivate after this long without commands
  std::size_t max_alive = 10000;                  ///< most aggregate actors alive per registry
};

/// What aggregate actors need: the store (for zero-copy reads in this
/// process) and its storage actor (for writes).
struct aggregate_context {
  std::shared_ptr<const event_store> store;  ///< read-only: writes go through `storage`
  storage_actor storage;
  aggregate_options options;
};

/// One stream's aggregate actor. It takes (command_atom, C) for each command
/// type C of the aggregate (each alternative of A::command), and
/// (command_atom, local_command<A::command>), and answers with a
/// command_reply or the error; answers stats_atom with its aggregate_info
/// (after hydrating); and passivates on passivate_atom (after the commands
/// before it; with a tick: the internal idle check). A command sent as C
/// needs CAF's inspect overload (CAF checks it when making the message); one
/// sent as local_command needs none and stays in the process.
template <class A>
using aggregate_actor = typename detail::aggregate_interface<typename A::command>::type;

/// The registry of an aggregate type: (command_atom, id, C) for each command
/// type C, and (command_atom, id, local_command<A::command>), answered as
/// the aggregate actor of `id` answers; stats_atom answers its
/// registry_stats. varve::runtime sends local_command: commands need no
/// inspect overload there.
template <class A>
using registry_actor = typename detail::registry_interface<typename A::command>::type;

/// The stream of aggregate `id`: "<category>-<id>". Never fails; the store
/// checks the name (at most 511 bytes) when the aggregate reads and appends,
/// and its commands fail with the store's error for a name it refuses.
template <aggregate A>
std::string stream_of(std::string_view id) {
  std::string out(A::category);
  out += '-';
  out += id;
  return out;
}

}  // namespace varve

#include "varve/actors/detail/aggregate_actor.hpp"
#include "varve/actors/detail/registry.hpp"

namespace varve {

/// The event of aggregate type A stored as `e` (its type and payload),
/// decoded with A's codec; std::nullopt when it is not one of A's events or
/// does not decode. For projections: `auto ev = decode_event<account>(d.event);`
template <aggregate A>
std::optional<typename A::event> decode_event(const event_view& e) {
  return detail::codec_of<A>::type::decode(e.type, e.payload);
}

/// Spawns a lone aggregate actor for aggregate `id`, outside any registry.
/// Registries keep one actor per stream; lone actors may race on one stream,
/// and optimistic versioning keeps them consistent (the loser reloads and
/// decides again). Never fails: a stream it cannot read makes each command
/// fail instead (see above). It quits by itself after `idle_timeout`
/// without commands, or on caf::anon_send_exit; commands sent after that
/// fail with caf::sec::request_receiver_down (errc::unavailable through
/// error_from).
template <aggregate A>
aggregate_actor<A> spawn_aggregate(caf::actor_system& sys, std::string_view id,
                                   aggregate_context ctx) {
  return sys.spawn(detail::aggregate_behavior<A>, stream_of<A>(id), std::move(ctx));
}

/// Spawns the registry of aggregate type A. Never fails; errors come with
/// each command's answer. It runs until stopped with
/// caf::anon_send_exit(registry, caf::exit_reason::user_shutdown), and then
/// stops its aggregate actors. Commands it has not taken yet are answered
/// with caf::sec::request_receiver_down (errc::unavailable through
/// error_from); one it has passed on to an aggregate actor may go
/// unanswered, so send commands with a timeout where a shutdown may race
/// them.
template <aggregate A>
registry_actor<A> spawn_registry(caf::actor_system& sys, aggregate_context ctx) {
  auto make = [ctx](caf::local_actor& registry, const std::string& id) {
    return caf::actor_cast<caf::actor>(
        registry.spawn(detail::aggregate_behavior<A>, stream_of<A>(id), ctx));
  };
  auto take = [](caf::type_erased_tuple& request) {
    return detail::take_command<typename A::command>(request, detail::commands_of<A>{});
  };
  return caf::actor_cast<registry_actor<A>>(detail::spawn_registry(
      sys, {std::string(A::category), ctx.options.max_alive, std::move(make), take}));
}

}  // namespace varve
