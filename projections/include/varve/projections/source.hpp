// Where a projection actor's log comes from. spawn_projection (projection.hpp)
// reads the store of this process; varve::remote::spawn_remote_projection
// reads a store service in another process. Either way the view and the
// cursor live in the projection's own store, written through its storage
// actor, and the projection_engine (engine.hpp) runs the same loop.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "varve/projections/engine.hpp"
#include "varve/projections/projection.hpp"

namespace varve {

/// A log source, owned by one projection actor and called on its thread
/// only (`self` and `engine` stay valid as long as the source lives).
class log_source {
 public:
  virtual ~log_source() = default;

  /// The actor runs and its engine has started: have (committed_atom, head)
  /// sent to `self` as the log grows (subscribe), connect, ... Failing for
  /// good: engine.fail(why).
  virtual void start(projection_actor::pointer self, projection_engine& engine) = 0;

  /// Reads up to `limit` events after `after` and answers with
  /// engine.on_batch(ticket, ...) or engine.on_read_failed(ticket, ...), now
  /// or later. A source that cannot read for now (connection lost) keeps the
  /// request and answers once it can.
  virtual void read(global_position after, std::size_t limit, std::uint64_t ticket) = 0;

  /// (source_timer_atom, tag) reached the actor: a timer the source set.
  virtual void on_timer(std::uint64_t tag) { (void)tag; }

  /// The log's head, when the source knows it without asking anyone (for
  /// status requests); std::nullopt otherwise.
  virtual std::optional<global_position> head() const { return std::nullopt; }

  /// Where the log is ("HOST:PORT"), stored with the cursor; empty: the
  /// projection's own store.
  virtual std::string where() const { return {}; }
};

/// Spawns a projection actor whose log comes from `source`, its view and
/// cursor in `store` written through `storage` (see spawn_projection).
/// `detached`: on a thread of its own (a source that blocks, e.g. to
/// connect).
projection_actor spawn_projection(caf::actor_system& sys, std::shared_ptr<log_source> source,
                                  std::shared_ptr<const event_store> store, storage_actor storage,
                                  projection_spec spec, bool detached = false);

}  // namespace varve
