// What a projection is made of, without CAF: its spec (name, mode, filter,
// handler, policies), the events its handler sees, the view writes of a
// batch, and the status it reports.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <varve/storage/event_store.hpp>

#include "varve/projections/protocol.hpp"

namespace varve {

/// What to do with an event whose handler still fails after the retries.
enum class failure_policy : std::uint8_t {
  stop,  ///< the projection stops in state "failed" and keeps the error
  skip,  ///< the event's position and error go to the dead-letter view; go on
};

/// Which events a projection sees; empty lists mean "all". An event passes
/// when its type is one of `event_types`, its stream is in one of the
/// `categories` or starts with one of the `stream_prefixes` (either; no
/// list: any stream), and it carries every one of `tags`. A stream matches
/// a category "account" when its name starts with "account-" (or is it).
/// Events it does not see still move its cursor.
///
/// Reading through the indexes: when the filter names event types, tags or
/// categories (and `indexed` is on), a projection of the store of this
/// process reads only the positions the store's type, category and tag
/// indexes list for them (read_transaction::scan_query), and its cursor
/// moves over the ranges with nothing for it without a record of them read.
/// Exactly-once, such a move (a read with no event for the projection) is
/// stored with the next view commit, at checkpoint_interval, or at stop,
/// not with a write of its own; after a crash the range is read again, and
/// has nothing for it again.
/// What reaches the handler is the same either way. Categories go to the
/// index when there are no stream prefixes, none has a '-' and no stream is
/// named exactly like one (the index knows "account-7" in "account", not a
/// stream "account"); otherwise they are checked per event.
struct projection_filter {
  std::vector<std::string> categories{};
  std::vector<std::string> stream_prefixes{};
  std::vector<std::string> event_types{};
  std::vector<std::string> tags{};  ///< all of them ("key:value"; see new_event)
  /// Read through the indexes when the filter allows it (above); false:
  /// read every event and check each (to compare, or to measure).
  bool indexed = true;

  /// Whether an event of `stream` with this type passes (its tags not
  /// looked at: true only when the filter has no tags, or they are checked
  /// elsewhere).
  bool matches(std::string_view stream, std::string_view type) const;
  /// Whether the event of `stream` passes, tags included.
  bool matches(std::string_view stream, const event_view& event) const;
  /// Whether it lets every event through (all lists empty).
  bool passes_all() const {
    return categories.empty() && stream_prefixes.empty() && event_types.empty() && tags.empty();
  }
  /// The query a read through the indexes of the store `txn` reads uses:
  /// it matches every event the filter passes (and maybe others, which
  /// the per-event check leaves out). std::nullopt when the filter passes
  /// everything, is not `indexed`, or names nothing the indexes answer
  /// (stream prefixes only, categories they cannot answer: see above).
  /// Errors of looking the category names up in `txn` leave categories to
  /// the per-event check.
  std::optional<query> index_query(const read_transaction& txn) const;
};

/// An event as a handler sees it: the event (views valid during the call)
/// and the name of its stream. A shredded event (event.shredded) has its
/// envelope only and is delivered like any other.
struct delivered_event {
  event_view event;
  std::string_view stream;
};

/// The writes of one batch of a projection to its view. Reads see the view
/// as committed plus this batch's own writes: a get looks at the newest few
/// writes, then in an index of the others (brought up to date when needed),
/// so it never scans the whole batch.
///
/// `base`, when given, is the batch before this one while its commit is in
/// flight (the engine handles the next batch meanwhile): reads see its
/// writes under this batch's own, above the committed view. It must
/// outlive this batch.
class view_batch {
 public:
  view_batch(std::string view, const read_transaction* txn, const view_batch* base = nullptr)
      : view_(std::move(view)), txn_(txn), base_(base) {}

  void put(std::string_view key, std::string_view value);
  void erase(std::string_view key);
  /// The current value under `key`; std::nullopt when there is none.
  /// Errors: those of reading the committed view (io_error, corruption).
  result<std::optional<std::string>> get(std::string_view key) const;

  const std::string& view() const { return view_; }
  /// The writes in order, for the commit (puts and erases of this view):
  /// the first names the view, the others leave `view` empty (the same
  /// view, as view_update allows).
  std::vector<view_update>& updates() { return updates_; }

  /// For the projection engine: undo the writes after a savepoint.
  std::size_t savepoint() const { return updates_.size(); }
  void rollback(std::size_t savepoint);
  void attach(const read_transaction* txn) { txn_ = txn; }

 private:
  const view_update* latest(std::string_view key) const;
  std::size_t* slot_of(std::string_view key) const;
  void index_up_to_date() const;

  std::string view_;
  const read_transaction* txn_;
  const view_batch* base_;
  std::vector<view_update> updates_;
  /// The index of updates_[0, indexed_): an open-addressing table of the
  /// last write of each key (its place in updates_ + 1; 0: a free slot).
  mutable std::vector<std::size_t> slots_;
  mutable std::size_t keys_ = 0;
  mutable std::size_t indexed_ = 0;
};

/// A handler of one event, or of a group of events (faster: one call per
/// batch). Return an error to have the event retried, then the failure
/// policy applied; an exception counts as errc::handler_failed.
using event_handler = std::function<result<void>(const delivered_event&, view_batch&)>;
using batch_handler = std::function<result<void>(std::span<const delivered_event>, view_batch&)>;

struct projection_spec {
  std::string name;
  delivery mode = delivery::exactly_once;
  projection_filter filter{};
  event_handler handle{};  ///< one of handle / handle_batch
  batch_handler handle_batch{};
  std::string view{};               ///< the view's name; default: the projection's name
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
  std::string state;  ///< a projection_state by name: "catching_up", "live", "retrying", ...
  /// The last error, empty when none. It stays after the projection
  /// recovers (a retry that succeeds, a cursor taken over from another
  /// instance) until resume, reset or rebuild clears it; a skipped event's
  /// error is cleared once its dead letter is written.
  std::string error;
  global_position position = 0;
  global_position head = 0;
  std::uint64_t lag_events = 0;
  double lag_seconds = 0;  ///< time between the newest event and the last one handled
  /// Events handed to the handler since start; an event handed again (a
  /// retry, or a batch handled again after a failed commit) counts again.
  std::uint64_t handled = 0;
  std::uint64_t wakeups = 0;       ///< times it woke up from idle to read
  std::uint64_t dead_letters = 0;  ///< events skipped since start
  std::uint32_t attempt = 0;       ///< retrying: the attempt that comes next
  std::uint32_t attempts = 0;      ///< retrying: the attempts allowed (first + retries)

  /// The state for people: "live", "retrying (attempt 2 of 4)", ...
  std::string state_text() const {
    auto s = parse_projection_state(state);
    return s ? describe(*s, attempt, attempts) : state;
  }

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

}  // namespace varve
