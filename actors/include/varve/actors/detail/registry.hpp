// The registry of an aggregate type, without the type: which aggregate
// actors are live, which commands are in flight to them, and the actor that
// routes commands (actors/src/registry.cpp, actors/src/registry_actor.cpp).
// Part of varve/actors/aggregate.hpp: spawn_registry<A> gives it a function
// that spawns the aggregate actor of an id, and hands out its typed handle.
//
// The registry actor is untyped inside: it takes (command_atom, id, C),
// checks C with the aggregate's command_taker and passes (command_atom, C)
// on to the aggregate actor of `id`; anything else is an unexpected
// message, as for a typed actor. The typed handle (registry_actor<A>)
// keeps callers to A's commands.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/fwd.hpp>
#include <caf/message.hpp>
#include <caf/response_promise.hpp>

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace varve {

struct registry_stats;

namespace detail {

/// A command the registry has sent to an aggregate actor and not answered.
struct pending_command {
  std::string id;                 ///< the aggregate's id
  caf::message command;           ///< (command_atom, C), as the aggregate actor takes it
  caf::response_promise promise;  ///< answers the command's sender
  unsigned bounces = 0;           ///< times it came back from an actor that had quit
};

/// The bookkeeping of one registry: its live aggregate actors, least
/// recently used last, capped at `max_alive`; the ones leaving (told to
/// passivate, or quit, and not down yet), whose ids take no new actor
/// until they are down: commands for them are held meanwhile, so that one
/// stream never has two actors of one registry; the commands in flight to
/// each; and the counters. It sends nothing: the registry actor acts on
/// what it returns. Not thread-safe: one registry actor owns it.
class live_aggregates {
 public:
  /// Most bounces of one command before it is answered with the bounce.
  static constexpr unsigned max_bounces = 3;

  /// At most `max_alive` actors live at once (0 counts as 1).
  explicit live_aggregates(std::size_t max_alive);

  /// The live actor of `id`, now the most recently used; nullptr when `id`
  /// has none.
  caf::actor find(const std::string& id);

  /// Makes room for one more actor: takes the least recently used ones out
  /// of the live set (counted as passivated) until one more fits, and
  /// returns them, to be told to passivate.
  std::vector<caf::actor> make_room();

  /// Records `actor` (new, monitored) as the live actor of `id`, the most
  /// recently used. Counted as spawned.
  void add(const std::string& id, caf::actor actor);

  /// Takes the actor at `addr` out of the live set, if it is still the live
  /// actor of its id, so that the id gets a fresh actor; the actor stays
  /// known until its down message.
  void retire(const caf::actor_addr& addr);

  /// True while the actor of `id` is leaving: hold() its commands.
  bool leaving(const std::string& id) const;
  /// Keeps `job` until the leaving actor of its id is down (see down()).
  void hold(pending_command job);

  /// Remembers `job` as sent to the actor at `to`; returns its key.
  std::uint64_t track(const caf::actor_addr& to, pending_command job);

  /// Takes back job `key` sent to `to` when its answer came; std::nullopt
  /// when it was answered already (the actor crashed).
  std::optional<pending_command> take(const caf::actor_addr& to, std::uint64_t key);

  /// `job` came back from the actor at `from`, which had quit before taking
  /// it (nothing was applied): retires that actor and counts the bounce.
  /// True when the job may go to a fresh actor; false after max_bounces.
  bool bounce(pending_command& job, const caf::actor_addr& from);

  /// What down() leaves to the registry actor.
  struct after_down {
    std::vector<pending_command> failed;  ///< in flight to a crashed actor: answer them
    std::vector<pending_command> resume;  ///< held for its id, in order: dispatch them
  };
  /// The actor at `addr` is down for `reason`: forgets it (a normal exit
  /// of a live one counts as passivated, any other as crashed) and returns
  /// the jobs still in flight to a crashed one, to be answered, and those
  /// held while it was leaving. Jobs in flight to one that quit normally
  /// stay: they bounce back.
  after_down down(const caf::actor_addr& addr, const caf::error& reason);

  /// The counters, with `alive` as it is now.
  registry_stats stats() const;

  /// Every live actor.
  std::vector<caf::actor> actors() const;

 private:
  struct entry {
    caf::actor actor;
    std::list<std::string>::iterator lru;
  };

  std::size_t max_alive_;
  std::unordered_map<std::string, entry> alive_;
  std::list<std::string> lru_;                  // most recently used first
  std::map<caf::actor_addr, std::string> ids_;  // until the down message
  std::map<caf::actor_addr, std::string> leaving_by_addr_;
  std::unordered_map<std::string, caf::actor_addr> leaving_;
  std::unordered_map<std::string, std::vector<pending_command>> held_;
  std::map<caf::actor_addr, std::map<std::uint64_t, pending_command>> pending_;
  std::uint64_t next_key_ = 0;
  std::uint64_t spawned_ = 0;
  std::uint64_t passivated_ = 0;
  std::uint64_t crashed_ = 0;
};

/// Spawns, from inside the registry actor, the aggregate actor of `id`.
using aggregate_spawner =
    std::function<caf::actor(caf::local_actor& registry, const std::string& id)>;

/// Moves the command out of (command_atom, id, C) and returns it as
/// (command_atom, C), the aggregate actor's message; an empty message when
/// C is none of the aggregate's command types.
using command_taker = caf::message (*)(caf::type_erased_tuple& request);

/// What a registry needs to know of its aggregate type.
struct registry_setup {
  std::string category;  ///< names streams in errors: "<category>-<id>"
  std::size_t max_alive = 0;
  aggregate_spawner spawn;
  command_taker take_command = nullptr;
};

/// Spawns a registry actor. Never fails. Stop it with caf::anon_send_exit:
/// it stops its live aggregate actors and quits with the same reason,
/// leaving the commands it passed on unanswered.
caf::actor spawn_registry(caf::actor_system& sys, registry_setup setup);

}  // namespace detail
}  // namespace varve
