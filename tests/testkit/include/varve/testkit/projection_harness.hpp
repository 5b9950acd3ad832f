// A projection run over given events, synchronously, without CAF: the real
// projection_engine (varve/projections/engine.hpp) over a real store.
//
//   varve::testkit::projection_harness h(bank::balances_projection());
//   h.given<bank::account>("account-1", {bank::opened{"ada"}, bank::deposited{100}});
//   BOOST_TEST(h.run());                                   // live at the head
//   BOOST_TEST(h.view("account-1") == std::optional<std::string>("100"));
//   BOOST_TEST(h.rebuilds_identically());                  // the handler is deterministic
//
// It stands where the projection actor stands (projections/src/
// projection_actor.cpp): the engine's reads go to the same reader of the
// store's log as a projection of this process (answered at once, during the
// read call), and its writes, its timers and the store's new heads become
// messages in a queue that run() hands to the engine one at a time, in
// order, as the actor's mailbox would. A write commits in the store (as the
// storage actor would) and its outcome goes to the engine. Timers do not
// sleep: they fire in the order they are due on a clock that only they move,
// after everything due before them; each is recorded (timers()).
//
// The engine starts at the first run(), from the stored checkpoint, and is
// told the log's head as a subscription to the storage actor would tell it;
// given() after that appends and tells it the new head, as the storage actor
// publishes its commits. Exactly-once: view and cursor commit together with
// each batch. At-least-once: the view writes reach the store with a
// checkpoint, whose timer (checkpoint_interval) run() lets fire once nothing
// else is due, so the view is in the store when run() returns.
//
// One harness is used by one thread at a time; it owns its temp_store, its
// engine and a copy of the spec (the spec's handlers are called from run()).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <varve/projections/engine.hpp>

#include "varve/testkit/temp_store.hpp"

namespace varve::testkit {

/// A timer the engine set, as recorded by the harness.
struct timer_call {
  engine_timer timer = engine_timer::read;
  std::chrono::milliseconds delay{0};
};

class projection_harness {
 public:
  /// A harness for `spec` over a fresh temp_store opened with `store`.
  /// Throws testkit_error when the store does not open.
  explicit projection_harness(projection_spec spec, temp_store_options store = {});
  ~projection_harness();
  projection_harness(const projection_harness&) = delete;
  projection_harness& operator=(const projection_harness&) = delete;

  /// Appends `events` to `stream`, encoded with A's codec (append_events:
  /// same errors, thrown as testkit_error). Once the engine runs, it is told
  /// the new head; the next run() handles them. Returns *this.
  template <aggregate A>
  projection_harness& given(std::string_view stream, const std::vector<typename A::event>& events) {
    append_events<A>(*store_.store(), stream, events);
    appended();
    return *this;
  }
  /// The same with events as the store takes them (any type and payload).
  projection_harness& given_events(std::string_view stream, const std::vector<new_event>& events);

  /// Starts the engine at the first call, then hands it the queued messages
  /// until none is left. Passes when the projection is then live at the
  /// log's head; otherwise the message gives its state (e.g. "failed"), its
  /// position and the head, and its last error (a handler that kept
  /// failing: "position 3: handler_failed: ..."). Fails as well when the
  /// queue never empties (over a million messages in one run).
  verdict run();

  /// The value under `key` in the projection's view (spec.view, default its
  /// name) as committed; std::nullopt when there is none. Throws
  /// testkit_error when the view does not read.
  std::optional<std::string> view(std::string_view key) const;
  /// Every row of the view, in key order. Throws as view().
  std::vector<std::pair<std::string, std::string>> rows() const;
  /// The events a failure_policy::skip projection skipped, by position, as
  /// stored in its dead-letter view. Throws as view() (also for a dead
  /// letter that does not parse).
  std::vector<std::pair<global_position, dead_letter>> dead_letters() const;

  /// The engine's status, with the log's head as the projection actor
  /// reports it. Throws testkit_error before the first run().
  projection_status status() const;

  /// Rebuilds the projection (projection_engine::rebuild: view and dead
  /// letters cleared, from position 0), runs it, and compares the view with
  /// the one before. Passes when every row is the same; otherwise the
  /// message names each key that differs, appeared or went away (a handler
  /// that depends on something beside the events, e.g. a counter or the
  /// clock), or the state the rebuild ended in. Runs first if run() was not
  /// called yet.
  verdict rebuilds_identically();

  /// Stops the engine as its process would stop it (its last write, the
  /// stored state "stopped" and at-least-once the unsaved tail and cursor,
  /// committed) and drops the queued messages; the next run() starts a new
  /// engine from the stored checkpoint. Does nothing before the first run().
  /// Throws testkit_error when the last write fails.
  void restart();

  /// The running engine, for control requests (pause, resume, reset, ...):
  /// their replies come during the next run(). Throws testkit_error before
  /// the first run(). Valid until restart() or the harness goes.
  projection_engine& engine();

  /// Every timer the engine set since the harness was made, in order.
  const std::vector<timer_call>& timers() const noexcept { return timers_; }
  /// The store of the events, the view and the cursor.
  temp_store& store() noexcept { return store_; }
  const projection_spec& spec() const noexcept { return spec_; }

 private:
  class driver;
  void appended();
  const std::string& view_name() const { return spec_.view.empty() ? spec_.name : spec_.view; }

  temp_store store_;
  projection_spec spec_;
  std::vector<timer_call> timers_;
  std::unique_ptr<driver> driver_;
};

}  // namespace varve::testkit
