// The projection engine: reading, commits, retries and the failure policy.
// Control requests are in engine_control.cpp, the handler calls in
// engine_batch.cpp.
#include <algorithm>
#include <iterator>
#include <utility>

#include "varve/projections/engine.hpp"

namespace varve {

projection_engine::projection_engine(projection_spec spec, std::shared_ptr<const event_store> store,
                                     engine_io& io, std::string source)
    : spec_(std::move(spec)), store_(std::move(store)), io_(io), source_(std::move(source)) {
  if (spec_.batch_events == 0) spec_.batch_events = 1;
}

void projection_engine::start() {
  if (!spec_.handle && !spec_.handle_batch)
    return fail("projection '" + spec_.name + "' has no handler");
  load_checkpoint();
}

/// Goes on from the cursor as stored (or stays paused).
void projection_engine::load_checkpoint() {
  attempt_ = 0;
  auto txn = store_->read();
  if (!txn) return fail("reading the checkpoint: " + txn.err().to_string());
  auto cur = txn->cursor_state(spec_.name);
  if (!cur) return fail("reading the checkpoint: " + cur.err().to_string());
  if (*cur) {
    position_ = stored_ = (*cur)->position;
    head_ = std::max(head_, position_);
    if (!(*cur)->state.empty()) {
      auto stored = parse_checkpoint_state((*cur)->state);
      if (!stored) {
        error_ = "the stored state of the checkpoint is ignored (going on from position " +
                 std::to_string(position_) + "): " + stored.err().to_string();
        save_checkpoint();
      } else if (stored->state == projection_state::paused) {
        state_ = projection_state::paused;
        return;
      }
    }
  }
  start_reading();
}

void projection_engine::observe_head(global_position head) {
  head_ = std::max(head_, head);
}

void projection_engine::on_head(global_position head) {
  observe_head(head);
  if (state_ == projection_state::live && head_ > position_) {
    ++wakeups_;
    start_reading();
  }
}

/// catching_up: one read is scheduled or in flight, under wait_ticket_.
void projection_engine::start_reading() {
  state_ = projection_state::catching_up;
  wait_ticket_ = ++tickets_;
  io_.wake(engine_timer::read, std::chrono::milliseconds(0), wait_ticket_);
}

/// After a batch or a commit: read on while behind the head, else live.
void projection_engine::read_on() {
  if (head_ > position_) return start_reading();
  state_ = projection_state::live;
  wait_ticket_ = 0;
}

projection_state projection_engine::reading_state(global_position at) const {
  return at >= head_ ? projection_state::live : projection_state::catching_up;
}

void projection_engine::on_timer(engine_timer timer, std::uint64_t ticket) {
  switch (timer) {
    case engine_timer::read:
      if (ticket != 0 && ticket == ahead_ticket_) {  // the batch after the commit in flight
        if (state_ != projection_state::committing || !commit_) {
          ahead_ticket_ = 0;
          return;
        }
        head_at_read_ = head_;
        return io_.read(commit_->to, spec_.batch_events, ticket);
      }
      if (state_ != projection_state::catching_up || ticket != wait_ticket_) return;
      head_at_read_ = head_;
      return io_.read(position_, spec_.batch_events, ticket);
    case engine_timer::retry:
      if (state_ != projection_state::retrying || ticket != wait_ticket_) return;
      return start_reading();
    case engine_timer::checkpoint:
      if (ticket != checkpoint_timer_) return;
      checkpoint_timer_ = 0;
      if (since_checkpoint_ > 0 || position_ != stored_) save_checkpoint();
      return;
  }
}

void projection_engine::on_batch(std::uint64_t ticket, const log_batch& batch) {
  const bool ahead = ticket != 0 && ticket == ahead_ticket_;
  if (ahead) {
    ahead_ticket_ = 0;
    // Handled while the commit before it is in flight; a batch with nothing
    // to handle is read again once that commit is done.
    if (state_ != projection_state::committing || !commit_ || next_ || batch.events.empty()) return;
  } else if (state_ != projection_state::catching_up || ticket != wait_ticket_) {
    return;
  }
  // The last position before this batch: committed, or where the commit in
  // flight moves the cursor.
  const global_position position = ahead ? commit_->to : position_;
  head_ = std::max(head_, batch.head);
  head_time_ = std::max(head_time_, batch.head_time);
  if (batch.events.empty()) {
    // A filtered read that found nothing for it up to `covered`: the
    // cursor moves there (exactly-once: committed, like any batch).
    if (batch.covered > position_) {
      batch_outcome o;
      o.last = batch.covered;
      o.last_time = batch.covered == batch.head ? batch.head_time : 0;
      return settle(std::move(o));
    }
    // Nothing after the position when it was read; a head that came while
    // reading needs a read of its own.
    if (head_ > std::max(batch.head, head_at_read_)) return start_reading();
    head_ = std::max(position_, batch.head);
    return read_on();
  }
  if (batch.covered == 0) {  // consecutive events
    global_position expect = position + 1;
    for (const auto& d : batch.events) {
      if (d.event.position != expect)
        return fail("the log jumps from position " + std::to_string(expect - 1) + " to " +
                    std::to_string(d.event.position));
      ++expect;
    }
  } else {  // a filtered read: increasing, after the position, up to `covered`
    global_position after = position;
    for (const auto& d : batch.events) {
      if (d.event.position <= after || d.event.position > batch.covered)
        return fail("a filtered read gave position " + std::to_string(d.event.position) +
                    " after position " + std::to_string(after) + " (covering up to " +
                    std::to_string(batch.covered) + ")");
      after = d.event.position;
    }
  }
  head_time_ = std::max(head_time_, batch.events.back().event.time);
  result<read_transaction> own = error{errc::io_error, "no read transaction"};
  const read_transaction* txn = batch.view_txn;
  if (!txn) {
    own = store_->read();
    if (!own) return fail("reading the view: " + own.err().to_string());
    txn = &*own;
  }
  view_batch view(view_name(), txn, ahead ? in_flight_view_.get() : nullptr);
  view.updates().reserve(last_updates_);
  batch_outcome o = handle(batch, view, position);
  last_updates_ = o.updates.size();
  if (!ahead) return settle(std::move(o));
  handled_ += o.handled;
  if (o.last > position) handled_time_ = o.last_time;
  const next_step step = next_after(o.failure);
  next_ = commit_of(std::move(o), step);
}

void projection_engine::on_read_failed(std::uint64_t ticket, const error& e) {
  if (ticket != 0 && ticket == ahead_ticket_) {  // read again once the commit is done
    ahead_ticket_ = 0;
    return;
  }
  if (state_ != projection_state::catching_up || ticket != wait_ticket_) return;
  fail("reading the log: " + e.to_string());
}

void projection_engine::source_unavailable(std::string why) {
  source_problem_ = std::move(why);
  if (state_ == projection_state::live) start_reading();  // the read waits for the source
}
void projection_engine::source_available() {
  source_problem_.clear();
}

/// Counts the failures of one event; the step its failure leads to.
projection_engine::next_step projection_engine::next_after(
    const std::optional<handler_failure>& failure) {
  if (!failure) {
    attempt_ = 0;
    return next_step::read_on;
  }
  if (failure->position != failing_at_) attempt_ = 0;
  failing_at_ = failure->position;
  error_ = failure->err.to_string();
  if (attempt_ < spec_.max_retries) {
    ++attempt_;
    return next_step::retry;
  }
  attempt_ = 0;
  if (spec_.on_failure == failure_policy::skip) return next_step::skip;
  error_ = "position " + std::to_string(failure->position) + ": " + error_;
  return next_step::fail;
}

/// A handled batch: at-least-once reads on (the cursor is saved later);
/// anything else commits view writes, cursor and the state it leads to.
void projection_engine::settle(batch_outcome o) {
  handled_ += o.handled;
  if (o.last > position_) handled_time_ = o.last_time;
  const next_step step = next_after(o.failure);
  if (spec_.mode == delivery::exactly_once && step == next_step::read_on && o.handled == 0 &&
      o.updates.empty() && !o.failure) {
    // Nothing for the projection in what it read (a filtered read over
    // other events): no view write to commit with the cursor, so the cursor
    // moves with the next commit or checkpoint (timer, or stop) instead of a
    // write of its own. Reading that range again finds nothing either.
    position_ = o.last;
    read_on();
    return maybe_checkpoint();
  }
  if (spec_.mode == delivery::at_least_once && step == next_step::read_on) {
    if (unsaved_.empty())
      unsaved_ = std::move(o.updates);
    else
      unsaved_.insert(unsaved_.end(), std::make_move_iterator(o.updates.begin()),
                      std::make_move_iterator(o.updates.end()));
    since_checkpoint_ += o.last - position_;
    position_ = o.last;
    read_on();
    return maybe_checkpoint();  // stores the state read_on has just set
  }
  begin_commit(commit_of(std::move(o), step));
}

/// The commit of a handled batch: its view writes (at-least-once, with
/// those that waited for a checkpoint), a dead letter when it skips, the
/// cursor's move and the state it leads to.
projection_engine::pending_commit projection_engine::commit_of(batch_outcome o, next_step step) {
  pending_commit c;
  c.views = take_unsaved();  // at-least-once: what waited for a checkpoint
  if (c.views.empty())
    c.views = std::move(o.updates);
  else
    c.views.insert(c.views.end(), std::make_move_iterator(o.updates.begin()),
                   std::make_move_iterator(o.updates.end()));
  c.to = o.last;
  c.step = step;
  if (step == next_step::skip) {
    const handler_failure& f = *o.failure;
    c.views.push_back(
        view_update{dead_letter_view(spec_.name), view_update::op::put, position_key(f.position),
                    to_json(dead_letter{f.stream, f.type, f.version, error_, now_us()})});
    c.to = f.position;
  }
  c.then = step == next_step::retry  ? projection_state::retrying
           : step == next_step::fail ? projection_state::failed
                                     : reading_state(c.to);
  return c;
}

void projection_engine::begin_commit(pending_commit c) {
  state_ = projection_state::committing;
  wait_ticket_ = 0;
  commit_ = std::move(c);
  commit_ticket_ = 0;
  if (background_ticket_ == 0) send_commit();  // else once the checkpoint is written
}

/// Exactly-once catching up: the next batch is read and handled while this
/// commit is in flight (not when a control request waits for it).
bool projection_engine::may_read_ahead(const pending_commit& c) const {
  return spec_.mode == delivery::exactly_once && !c.control && c.step == next_step::read_on &&
         c.then == projection_state::catching_up && deferred_.empty() && !next_;
}

void projection_engine::send_commit() {
  commit_ticket_ = ++tickets_;
  const bool ahead = may_read_ahead(*commit_);
  if (ahead) {  // the next batch's reads see these writes, which the store has not yet
    in_flight_view_ = std::make_unique<view_batch>(view_name(), nullptr);
    auto& copy = in_flight_view_->updates();
    copy.reserve(commit_->views.size());
    const std::string& name = in_flight_view_->view();
    const std::string* of = nullptr;               // the view of `u` (empty: the one before's)
    for (const view_update& u : commit_->views) {  // its reads look keys up: no view name kept
      if (!u.view.empty()) of = &u.view;
      if (of && *of == name) copy.push_back(view_update{{}, u.kind, u.key, u.value});
    }
  }
  write_request w;
  w.views = std::move(commit_->views);
  w.cursors.push_back(cursor_update{spec_.name, commit_->to, stored_state(commit_->then), stored_});
  io_.write(std::move(w), commit_ticket_);
  if (ahead) {
    ahead_ticket_ = ++tickets_;
    io_.wake(engine_timer::read, std::chrono::milliseconds(0), ahead_ticket_);
  }
}

void projection_engine::on_written(std::uint64_t ticket, const std::optional<error>& failure) {
  if (ticket != 0 && ticket == background_ticket_)
    background_done(failure);
  else if (ticket != 0 && commit_ && ticket == commit_ticket_)
    commit_done(failure);
  else
    return;
  if (commit_ && commit_ticket_ == 0 && background_ticket_ == 0) send_commit();
  if (note_wanted_ && !busy()) save_checkpoint();
  run_deferred();
}

void projection_engine::commit_done(const std::optional<error>& failure) {
  pending_commit c = std::move(*commit_);
  commit_.reset();
  commit_ticket_ = 0;
  if (!failure) {
    position_ = stored_ = c.to;
    since_checkpoint_ = 0;
  }
  // The batch handled meanwhile, or the read of it in flight.
  std::optional<pending_commit> next = std::move(next_);
  next_.reset();
  in_flight_view_.reset();
  const std::uint64_t ahead = std::exchange(ahead_ticket_, 0);
  if (state_ != projection_state::committing) {  // failed meanwhile: it stays failed
    if (c.done) c.done(status());
    return;
  }
  if (c.control) {
    if (failure) error_ = "carrying out the request: " + failure->to_string();
    if (c.then == projection_state::paused || c.then == projection_state::failed)
      state_ = c.then;
    else
      read_on();
    return c.done(status());
  }
  if (failure && failure->code() == errc::wrong_expected_version) {
    // The cursor is not where this instance left it: another instance of
    // the projection committed meanwhile (one told to stop just before this
    // one started, whose last commit landed after this one read the
    // checkpoint). Nothing of this commit was written: go on from the
    // cursor as stored.
    error_ = "another instance moved the cursor (" + failure->message() + "): going on from it";
    return load_checkpoint();
  }
  if (failure)
    return fail((c.step == next_step::skip ? "writing a dead letter: " : "committing the view: ") +
                failure->to_string());
  switch (c.step) {
    case next_step::skip:
      ++dead_letters_;
      error_.clear();
      return read_on();
    case next_step::read_on:
      if (next) return begin_commit(std::move(*next));
      if (ahead != 0 && head_ > position_) {  // that read is now the read
        state_ = projection_state::catching_up;
        wait_ticket_ = ahead;
        return;
      }
      return read_on();
    case next_step::retry:
      state_ = projection_state::retrying;
      wait_ticket_ = ++tickets_;
      return io_.wake(engine_timer::retry,
                      spec_.retry_backoff * (1u << std::min(attempt_ - 1, 16u)), wait_ticket_);
    case next_step::fail:
      state_ = projection_state::failed;
      return;
  }
}

void projection_engine::fail(std::string why) {
  state_ = projection_state::failed;
  wait_ticket_ = 0;
  ahead_ticket_ = 0;
  next_.reset();
  error_ = std::move(why);
  save_checkpoint();  // where varvectl sees it
}

// ---- the cursor's writes beside the state machine: at-least-once
// checkpoints and notes of the state. One write of the cursor at a time.

std::vector<view_update> projection_engine::take_unsaved() {
  std::vector<view_update> out = std::move(unsaved_);
  unsaved_.clear();
  return out;
}

void projection_engine::maybe_checkpoint() {
  if (since_checkpoint_ >= spec_.checkpoint_every) return save_checkpoint();
  if (checkpoint_timer_ == 0 && position_ != stored_) {
    checkpoint_timer_ = ++tickets_;
    io_.wake(engine_timer::checkpoint, spec_.checkpoint_interval, checkpoint_timer_);
  }
}

/// Stores the state, and at-least-once the cursor with the unsaved view
/// writes (a checkpoint), unless a write is in flight: then once it is done.
void projection_engine::save_checkpoint() {
  if (commit_ || background_ticket_ != 0) {
    note_wanted_ = true;
    return;
  }
  note_wanted_ = false;
  const bool at_least_once = spec_.mode == delivery::at_least_once;
  // Exactly-once, the position is past the stored cursor only over ranges
  // with nothing for the projection (settle): it may be stored alone.
  background_to_ = position_;
  since_checkpoint_ = 0;
  background_ticket_ = ++tickets_;
  write_request w;
  if (at_least_once) w.views = take_unsaved();
  w.cursors.push_back(cursor_update{spec_.name, background_to_, stored_state(state_), stored_});
  io_.write(std::move(w), background_ticket_);
}

void projection_engine::background_done(const std::optional<error>& failure) {
  background_ticket_ = 0;
  if (failure) {
    if (state_ != projection_state::failed) error_ = failure->to_string();
  } else {
    stored_ = background_to_;
  }
  if (commit_) return;  // the commit that waited goes first
  if (note_wanted_ || since_checkpoint_ >= spec_.checkpoint_every) save_checkpoint();
}

std::string projection_engine::stored_state(projection_state s) const {
  checkpoint_state out;
  out.mode = spec_.mode;
  out.state = s == projection_state::committing ? reading_state(position_) : s;
  out.error = error_;
  out.updated_us = now_us();
  if (s == projection_state::retrying) {
    out.attempt = attempt_ + 1;
    out.attempts = spec_.max_retries + 1;
  }
  out.source = source_;
  return to_json(out);
}

projection_status projection_engine::status() const {
  projection_status s;
  s.name = spec_.name;
  s.mode = std::string(to_string(spec_.mode));
  s.state = std::string(to_string(state_));
  s.error = source_problem_.empty() ? error_ : source_problem_;
  s.set_progress(position_, head_, head_time_, handled_time_);
  s.handled = handled_;
  s.wakeups = wakeups_;
  s.dead_letters = dead_letters_;
  if (state_ == projection_state::retrying) {
    s.attempt = attempt_ + 1;
    s.attempts = spec_.max_retries + 1;
  }
  return s;
}

write_request projection_engine::stop() {
  const projection_state kept =
      state_ == projection_state::failed || state_ == projection_state::paused
          ? state_
          : projection_state::stopped;
  write_request w;
  if (spec_.mode == delivery::at_least_once) {
    if (commit_ && commit_ticket_ == 0) w.views = std::move(commit_->views);  // never sent
    for (auto& u : take_unsaved())
      w.views.push_back(std::move(u));
    const global_position at = commit_ ? commit_->to : position_;
    w.cursors.push_back(cursor_update{spec_.name, at, stored_state(kept), std::nullopt});
  } else {
    // A write in flight is expected to land; else the position (past the
    // stored cursor only over ranges with nothing for the projection).
    const bool in_flight = (commit_ && commit_ticket_ != 0) || background_ticket_ != 0;
    const global_position at = commit_ && commit_ticket_ != 0 ? commit_->to
                               : background_ticket_ != 0      ? background_to_
                                                              : position_;
    w.cursors.push_back(
        cursor_update{spec_.name, at, stored_state(kept), in_flight ? at : stored_});
  }
  state_ = projection_state::stopped;
  return w;
}

}  // namespace varve
