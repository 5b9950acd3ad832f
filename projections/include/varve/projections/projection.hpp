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
#pragma once

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <varve/actors/storage_actor.hpp>

#include "varve/projections/type_ids.hpp"

namespace varve {

enum class delivery : std::uint8_t { exactly_once, at_least_once };

/// What to do with an event whose handler still fails after the retries.
enum class failure_policy : std::uint8_t {
  stop,  ///< the projection stops in state "failed" and keeps the error
  skip,  ///< the event's position and error go to the dead-letter view; go on
};

/// Which events a projection sees; empty lists mean "all". A stream matches
/// a category "account" when its name starts with "account-" (or is it),
/// and a prefix when it starts with it. Events it does not see still move
/// its cursor.
struct projection_filter {
  std::vector<std::string> categories{};
  std::vector<std::string> stream_prefixes{};
  std::vector<std::string> event_types{};

  bool matches(std::string_view stream, std::string_view type) const;
};

/// An event as a handler sees it: the event (views valid during the call)
/// and the name of its stream. A shredded event (event.shredded) has its
/// envelope only and is delivered like any other.
struct delivered_event {
  event_view event;
  std::string_view stream;
};

/// The writes of one batch of a projection to its view. Reads see the view
/// as committed plus this batch's own writes.
class view_batch {
 public:
  view_batch(std::string view, const read_transaction* txn) : view_(std::move(view)), txn_(txn) {}

  void put(std::string_view key, std::string_view value);
  void erase(std::string_view key);
  /// The current value under `key`; std::nullopt when there is none.
  result<std::optional<std::string>> get(std::string_view key) const;

  const std::string& view() const { return view_; }
  std::vector<view_update>& updates() { return updates_; }

  /// For the projection actor: undo the writes after a savepoint.
  std::size_t savepoint() const { return updates_.size(); }
  void rollback(std::size_t savepoint) { updates_.resize(savepoint); }
  void attach(const read_transaction* txn) { txn_ = txn; }

 private:
  std::string view_;
  const read_transaction* txn_;
  std::vector<view_update> updates_;
};

/// A handler of one event, or of a group of events (faster: one call per
/// batch). Return an error to have the event retried, then the failure
/// policy applied; exceptions count as errors.
using event_handler = std::function<result<void>(const delivered_event&, view_batch&)>;
using batch_handler = std::function<result<void>(std::span<const delivered_event>, view_batch&)>;

struct projection_spec {
  std::string name;
  delivery mode = delivery::exactly_once;
  projection_filter filter{};
  event_handler handle{};  ///< one of handle / handle_batch
  batch_handler handle_batch{};
  std::string view{};               ///< exactly-once view name; default: the projection's name
  std::size_t batch_events = 1000;  ///< events read per batch
  unsigned max_retries = 3;         ///< retries of a failing event before the policy applies
  std::chrono::milliseconds retry_backoff{10};  ///< first retry delay, doubled each time
  failure_policy on_failure = failure_policy::stop;
  std::size_t checkpoint_every = 1000;                  ///< at-least-once
  std::chrono::milliseconds checkpoint_interval{1000};  ///< at-least-once
};

/// What a projection reports.
struct projection_status {
  std::string name;
  std::string mode;   ///< "exactly_once" | "at_least_once"
  std::string state;  ///< "catching_up" | "live" | "paused" | "failed" | "stopped"
  std::string error;  ///< the last error, empty when none
  global_position position = 0;
  global_position head = 0;
  std::uint64_t lag_events = 0;
  double lag_seconds = 0;          ///< time between the newest event and the last one handled
  std::uint64_t handled = 0;       ///< events handed to the handler since start
  std::uint64_t wakeups = 0;       ///< times it woke up from idle to read
  std::uint64_t dead_letters = 0;  ///< events skipped since start

  /// Sets position, head (at least the position) and the lag: in events,
  /// and in seconds between `head_time` (the newest event's time) and
  /// `handled_time` (the last handled event's), 0 when caught up.
  void set_progress(global_position at, global_position log_head, timestamp_us head_time,
                    timestamp_us handled_time) {
    position = at;
    head = std::max(log_head, at);
    lag_events = head - at;
    lag_seconds = lag_events == 0 || head_time <= handled_time
                      ? 0.0
                      : static_cast<double>(head_time - handled_time) / 1e6;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, projection_status& x) {
  return f(caf::meta::type_name("varve::projection_status"), x.name, x.mode, x.state, x.error,
           x.position, x.head, x.lag_events, x.lag_seconds, x.handled, x.wakeups, x.dead_letters);
}

/// The typed interface of a projection actor:
/// - (committed_atom, head): the log reaches `head` (from the storage actor);
/// - (status_atom) -> projection_status;
/// - (pause_atom), (resume_atom): stop and go on reading;
/// - (reset_atom, position): move the cursor to `position` (view kept);
/// - (rebuild_atom): clear the view and the cursor, replay from the start;
///   each answers with the status after the change;
/// - (control_error_atom, why) -> projection_status: a control request for
///   this projection did not read and is not carried out; `why` becomes its
///   last error, stored with its cursor (a failed projection keeps the error
///   it failed with), and it goes on as it was;
/// - (continue_atom), (retry_atom), (checkpoint_atom): internal.
using projection_actor =
    caf::typed_actor<caf::reacts_to<committed_atom, std::uint64_t>,
                     caf::replies_to<status_atom>::with<projection_status>,
                     caf::replies_to<pause_atom>::with<projection_status>,
                     caf::replies_to<resume_atom>::with<projection_status>,
                     caf::replies_to<reset_atom, std::uint64_t>::with<projection_status>,
                     caf::replies_to<rebuild_atom>::with<projection_status>,
                     caf::replies_to<control_error_atom, std::string>::with<projection_status>,
                     caf::reacts_to<continue_atom>, caf::reacts_to<retry_atom>,
                     caf::reacts_to<checkpoint_atom>>;

/// Spawns a projection over `store` (read in this process, zero copy) that
/// writes through `storage`. It loads its cursor, subscribes to the storage
/// actor's heads and catches up. A cursor whose stored state does not read
/// (another process wrote it in another shape) still gives the position: the
/// projection goes on from there, with the problem as its last error. A
/// cursor that cannot be read at all stops it in state "failed". Stop it
/// with caf::anon_send_exit(p, caf::exit_reason::user_shutdown): an
/// at-least-once projection saves its cursor first.
projection_actor spawn_projection(caf::actor_system& sys, std::shared_ptr<const event_store> store,
                                  storage_actor storage, projection_spec spec);

/// The name of the view that holds the dead letters of projection `name`:
/// key = position (8 bytes big-endian), value = JSON {stream, type, version, error}.
std::string dead_letter_view(std::string_view name);

/// The view in which `varvectl projections pause|resume|reset|rebuild`
/// leaves requests for the projection manager (key: projection name).
inline constexpr std::string_view control_view = "varve.projection_control";

}  // namespace varve
