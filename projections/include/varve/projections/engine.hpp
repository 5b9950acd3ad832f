// The projection engine: the loop of one projection, without CAF, the same
// wherever its log comes from (the store of this process, or a store
// service in another process; see source.hpp).
//
// It reads batches after its position, hands them to the handler, and
// commits view writes and cursor together in its own store (exactly-once),
// or moves the cursor in memory and saves it every N events / T ms and at
// stop (at-least-once). A failing handler is retried with backoff, then the
// failure policy applies (stop in state "failed", or skip the event to the
// dead-letter view). Control requests pause, resume, reset and rebuild it.
//
// The engine does no I/O of its own but reading its checkpoint and the
// view: it asks an engine_io (the projection actor) to read the log, to
// commit, and to wake it later; each request carries a ticket and its
// answer comes back with it (now or later). An answer the engine no longer
// waits for (a read that a pause overtook) is dropped. One engine is used
// by one thread at a time.
//
// The states (projection_state, protocol.hpp) and their transitions, each
// a member function below (start, on_head, on_batch, on_written, on_timer,
// the control requests, fail, stop):
//
//      start ─────────────────────(a stored "paused")──────────────────► paused
//        │
//        ▼          batch read: exactly-once, or a handler failed
//   catching_up ───────────────────────────────────────────────► committing
//    │ ▲  ▲  ▲                                                       │
//    │ │  │  └──────────────(committed, behind the head)─────────────┤
//    │ │  │                                                          │
//    │ │  └──(backoff over)── retrying ◄──(committed, retries left)──┤
//    │ │                                                             │
//    │ │ head > position                                             │
//    ▼ │                                                             │
//   live ◄──────────(committed, at the head; skip: past the event)───┤
//                                                                    │
//   failed ◄──(committed, retries used up with policy "stop";        │
//              a commit, a read or the cursor failed)────────────────┘
//
// - catching_up ⇄ live: a read that finds nothing after the position goes
//   live; a head past the position wakes it (one read for a burst of heads).
//   A filtered read (log_batch::covered) that finds nothing for the
//   projection moves the cursor over what it covered, as a batch would.
// - at-least-once: a batch without failure goes on to catching_up or live
//   directly (the cursor is saved later, beside the machine: reading goes
//   on while a checkpoint is written; a commit that comes meanwhile waits).
// - control requests: from any state to committing (after the write in
//   flight, if any), then pause → paused (a failed one stays failed);
//   resume, reset, rebuild → catching_up or live (reset keeps paused).
// - any state ──(the actor stops: its last write)──► stopped.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "varve/projections/spec.hpp"

namespace varve {

/// A batch of the log as a source hands it to the engine: events after the
/// position asked for, with their streams (views valid during on_batch),
/// and the log's head when they were read.
///
/// Without `covered` (0) the events are consecutive: every event from the
/// one after the position on. A source that reads through the store's
/// indexes (the filter's, see projection_filter) sets `covered`: the events
/// are in increasing order, and every event after the position up to
/// `covered` that the filter lets through is among them; the engine then
/// moves its cursor to `covered` (an empty batch included: a range with
/// nothing for it).
struct log_batch {
  std::span<const delivered_event> events;
  global_position head = 0;    ///< the log's head when read
  timestamp_us head_time = 0;  ///< the head event's time; 0: not known
  /// A read transaction of the projection's own store, when the source has
  /// one open (the log is in that store); else the engine opens one.
  const read_transaction* view_txn = nullptr;
  /// A filtered read: how far it covered the log (above); 0: consecutive.
  global_position covered = 0;
};

/// The engine's timers.
enum class engine_timer : std::uint8_t {
  read,        ///< read now, after what is already queued
  retry,       ///< the backoff after a handler failure is over
  checkpoint,  ///< at-least-once: checkpoint_interval is over
};

/// What an engine asks of the process it runs in.
class engine_io {
 public:
  virtual ~engine_io() = default;
  /// Reads up to `limit` events after `after`; answer with on_batch or
  /// on_read_failed.
  virtual void read(global_position after, std::size_t limit, std::uint64_t ticket) = 0;
  /// Commits `request` in the projection's own store, in one transaction;
  /// answer with on_written.
  virtual void write(write_request request, std::uint64_t ticket) = 0;
  /// Calls on_timer(timer, ticket) after `delay` (0: after what is queued).
  virtual void wake(engine_timer timer, std::chrono::milliseconds delay, std::uint64_t ticket) = 0;
};

class projection_engine {
 public:
  /// Called with the status once a control request is carried out (or
  /// failed: the status then carries the error).
  using reply = std::function<void(const projection_status&)>;

  /// An engine for `spec` whose view and cursor live in `store`; `source`
  /// names where the log is ("HOST:PORT"; empty: `store` itself).
  projection_engine(projection_spec spec, std::shared_ptr<const event_store> store, engine_io& io,
                    std::string source = {});

  /// Loads the checkpoint and starts reading, or stays paused (a stored
  /// "paused"). A stored state that does not read is ignored, recorded as
  /// the last error; a cursor that cannot be read, or a spec without a
  /// handler, leaves it failed.
  void start();

  /// The log reaches `head`: a live projection reads.
  void on_head(global_position head);
  /// The log reaches at least `head`, for the lag only (no read).
  void observe_head(global_position head);

  void on_batch(std::uint64_t ticket, const log_batch& batch);
  /// The read failed: the projection fails with the error.
  void on_read_failed(std::uint64_t ticket, const error& e);
  /// A write's outcome: std::nullopt when it committed.
  void on_written(std::uint64_t ticket, const std::optional<error>& failure);
  void on_timer(engine_timer timer, std::uint64_t ticket);

  /// The source cannot read for now (a service that went away): `why`
  /// shows as the error until source_available(); a live projection goes
  /// back to catching up (its read waits in the source).
  void source_unavailable(std::string why);
  void source_available();
  /// Stops the projection in state "failed" keeping `why` (stored with
  /// the cursor).
  void fail(std::string why);

  /// Control requests: each runs once the commit in flight is done, commits
  /// the stored state (and the cursor's move), then replies.
  void pause(reply done);
  void resume(reply done);                         ///< also clears the error, from "failed" too
  void reset(global_position to, reply done);      ///< the cursor to `to`, the view kept
  void rebuild(reply done);                        ///< view and dead letters cleared, from 0
  void report_error(std::string why, reply done);  ///< kept as the last error; goes on

  projection_status status() const;
  projection_state state() const { return state_; }
  /// Which events the handler sees (a source may read only those).
  const projection_filter& filter() const { return spec_.filter; }

  /// The last write as the process stops it: the stored state says
  /// "stopped" ("paused" and "failed" stay). At-least-once: the unsaved
  /// tail and the cursor. Exactly-once: the cursor where it is stored, or
  /// where the commit in flight (sent before) moves it, guarded so that it
  /// never moves the cursor itself.
  write_request stop();

 private:
  /// A handler failure in a batch.
  struct handler_failure {
    global_position position = 0;
    std::string stream, type;
    stream_version version = 0;
    error err{errc::handler_failed, ""};
  };
  /// What handling a batch gave.
  struct batch_outcome {
    global_position last = 0;  ///< the last event covered (handled or filtered out)
    timestamp_us last_time = 0;
    std::uint64_t handled = 0;
    std::vector<view_update> updates;
    std::optional<handler_failure> failure;
  };
  /// What comes after a batch.
  enum class next_step : std::uint8_t { read_on, retry, fail, skip };
  /// A commit that reading waits for (state "committing").
  struct pending_commit {
    bool control = false;
    global_position to = 0;
    std::vector<view_update> views;
    projection_state then = projection_state::live;  ///< stored; entered once committed
    next_step step = next_step::read_on;             ///< batch: what comes after it
    reply done;                                      ///< control: the requester
  };

  /// Hands `batch` (its events after `after`) to the handler.
  batch_outcome handle(const log_batch& batch, view_batch& view, global_position after);
  next_step next_after(const std::optional<handler_failure>& failure);
  void settle(batch_outcome outcome);
  pending_commit commit_of(batch_outcome o, next_step step);
  void load_checkpoint();
  void read_on();
  void start_reading();
  void begin_commit(pending_commit c);
  void send_commit();
  bool may_read_ahead(const pending_commit& c) const;
  void commit_done(const std::optional<error>& failure);
  void control_commit(global_position to, std::vector<view_update> views, projection_state then,
                      reply done);
  bool defer(std::function<void()> request);
  void run_deferred();
  void maybe_checkpoint();
  void save_checkpoint();
  void background_done(const std::optional<error>& failure);
  std::vector<view_update> take_unsaved();
  projection_state reading_state(global_position at) const;
  /// The cursor where it stands: exactly-once as stored, at-least-once where
  /// the handler is (its unsaved view writes go with it).
  global_position saved_position() const;
  std::string stored_state(projection_state s) const;
  const std::string& view_name() const { return spec_.view.empty() ? spec_.name : spec_.view; }
  bool busy() const { return commit_.has_value() || background_ticket_ != 0; }

  projection_spec spec_;
  std::shared_ptr<const event_store> store_;
  engine_io& io_;
  std::string source_;

  projection_state state_ = projection_state::catching_up;
  global_position position_ = 0;  ///< last event handled (exactly-once: committed)
  global_position stored_ = 0;    ///< the cursor as stored: the guard of the next write
  std::size_t last_updates_ = 0;  ///< view writes of the last batch: room made for the next
  global_position head_ = 0, head_at_read_ = 0;
  timestamp_us head_time_ = 0, handled_time_ = 0;
  std::string error_, source_problem_;
  unsigned attempt_ = 0;  ///< failed attempts at the event at failing_at_
  global_position failing_at_ = 0;
  std::uint64_t tickets_ = 0;             ///< the last ticket given
  std::uint64_t wait_ticket_ = 0;         ///< catching_up: the read; retrying: the timer
  std::optional<pending_commit> commit_;  ///< state "committing": sent, or waiting for
  std::uint64_t commit_ticket_ = 0;       ///<   the background write (ticket 0)
  // Exactly-once catching up, the batch after the commit in flight is read
  // and handled meanwhile (its reads see the writes in flight, kept in
  // in_flight_view_); its commit waits in next_ for the one in flight.
  std::uint64_t ahead_ticket_ = 0;  ///< the read of that batch
  std::unique_ptr<view_batch> in_flight_view_;
  std::optional<pending_commit> next_;
  std::uint64_t background_ticket_ = 0;  ///< a checkpoint or a state note in flight
  global_position background_to_ = 0;
  bool note_wanted_ = false;  ///< store the state once the write in flight is done
  std::deque<std::function<void()>> deferred_;  ///< control requests waiting for a write

  // at-least-once
  std::vector<view_update> unsaved_;  ///< view writes waiting for a checkpoint
  std::uint64_t since_checkpoint_ = 0;
  std::uint64_t checkpoint_timer_ = 0;

  std::uint64_t handled_ = 0, wakeups_ = 0, dead_letters_ = 0;
  std::vector<delivered_event> group_;  ///< handle_batch's events, reused
};

}  // namespace varve
