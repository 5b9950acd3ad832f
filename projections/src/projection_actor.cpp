// The projection actor.
//
// States: catching_up ──(reached the head)──► live ◄──► paused
//                └───────(failure policy stop)──────► failed
// One batch at a time: read up to batch_events events after the cursor in a
// read transaction of this process, hand them to the handler, then (exactly
// once) commit view writes and cursor through the storage actor, or (at
// least once) move the cursor in memory and save it every N events / T ms.
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "json_rows.hpp"
#include "varve/actors/error.hpp"
#include "varve/projections/projection.hpp"

namespace varve {

namespace {

timestamp_us now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string position_key(global_position p) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i, p >>= 8)
    key[i] = static_cast<char>(p & 0xff);
  return key;
}

enum class phase { catching_up, live, paused, failed, stopped };

const char* to_string(phase p) {
  switch (p) {
    case phase::catching_up:
      return "catching_up";
    case phase::live:
      return "live";
    case phase::paused:
      return "paused";
    case phase::failed:
      return "failed";
    case phase::stopped:
      return "stopped";
  }
  return "?";
}

/// A handler failure in the current batch.
struct batch_failure {
  global_position position = 0;
  std::string stream, type;
  stream_version version = 0;
  error err;
};

struct projection_state {
  static inline const char* name = "varve.projection";

  projection_spec spec;
  std::shared_ptr<const event_store> store;
  storage_actor storage;

  phase current = phase::catching_up;
  std::string error;
  global_position position = 0;    // last event handled
  global_position committed = 0;   // cursor as stored
  global_position committing = 0;  // where the commit in flight moves it
  global_position head = 0;
  timestamp_us head_time = 0, handled_time = 0;
  bool busy = false;           // a blocking commit is in flight: reading waits
  bool checkpointing = false;  // an at-least-once checkpoint is in flight
  bool continue_pending = false;
  bool retry_pending = false;
  unsigned attempts = 0;             // failures of the event after `position`
  std::vector<view_update> unsaved;  // at-least-once: view writes waiting for a checkpoint
  std::size_t since_checkpoint = 0;
  bool checkpoint_armed = false;
  std::vector<std::function<void()>> after_commit;  // control requests deferred while busy

  // Stream names by stream id (an id's name never changes), so that a batch
  // does not look each one up again; and the vectors of a batch, reused.
  std::vector<std::string> stream_names;
  std::vector<event_view> events;
  std::vector<delivered_event> group;

  projection_status status;
};

using pointer = projection_actor::stateful_pointer<projection_state>;

/// Stream ids below this have their names cached by the projection.
constexpr std::uint64_t max_cached_names = std::uint64_t{1} << 20;

/// The name of stream `id`, from the projection's cache or looked up in
/// `txn` (then cached). The view stays valid until the next lookup of an id
/// not yet cached (the cache may grow), or with the transaction.
std::string_view stream_name_of(projection_state& st, const read_transaction& txn,
                                std::uint64_t id) {
  if (id < st.stream_names.size() && !st.stream_names[id].empty()) return st.stream_names[id];
  auto name = txn.stream_name(id);
  if (!name) return {};
  if (id >= max_cached_names) return *name;
  if (id >= st.stream_names.size())
    st.stream_names.resize(std::max<std::size_t>(id + 1, 2 * st.stream_names.size()));
  return st.stream_names[id] = std::string(*name);
}

const std::string& view_of(const projection_state& st) {
  return st.spec.view.empty() ? st.spec.name : st.spec.view;
}

std::string state_json(const projection_state& st) {
  nlohmann::json j{
      {"mode", st.spec.mode == delivery::exactly_once ? "exactly_once" : "at_least_once"},
      {"state", to_string(st.current)},
      {"error", st.error},
      {"updated_us", now_us()}};
  return detail::json_text(j);  // the error may quote any bytes
}

/// The phase named by a stored cursor state (as state_json writes it); an
/// empty state names none. Never throws: a state that another process wrote
/// in another shape is a corruption error that says what is wrong with it.
result<std::string> stored_phase(std::string_view text) {
  auto bad = [](std::string why) { return error{errc::corruption, std::move(why)}; };
  if (text.empty()) return std::string();
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return bad("it is not JSON");
  if (!j.is_object()) return bad("it is " + detail::kind_of(j) + ", not an object");
  const auto phase = j.find("state");
  if (phase == j.end()) return bad("it has no 'state'");
  if (!phase->is_string()) return bad("'state' is " + detail::kind_of(*phase) + ", not a string");
  return phase->get<std::string>();
}

projection_status make_status(const projection_state& st) {
  projection_status s = st.status;
  s.name = st.spec.name;
  s.mode = st.spec.mode == delivery::exactly_once ? "exactly_once" : "at_least_once";
  s.state = to_string(st.current);
  s.error = st.error;
  s.set_progress(st.position, st.head, st.head_time, st.handled_time);
  return s;
}

void process(pointer self);

/// Sends a write of cursor (and `views`) to the storage actor; `done` runs
/// with the outcome. The cursor moves only from where it is stored.
void run_deferred(pointer self) {
  auto& st = self->state;
  if (st.busy || st.checkpointing) return;
  auto deferred = std::move(st.after_commit);
  for (auto& f : deferred)
    f();
}

/// Sends a write of cursor (and `views`) to the storage actor; `done` runs
/// with the outcome. The cursor moves only from where it is stored. A
/// blocking commit stops reading until it is done (exactly-once batches,
/// control requests); an at-least-once checkpoint does not.
void commit(pointer self, global_position to, std::vector<view_update> views,
            std::function<void(const caf::error*)> done, bool blocking = true) {
  auto& st = self->state;
  write_request w;
  w.views = std::move(views);
  w.cursors.push_back(cursor_update{st.spec.name, to, state_json(st), st.committed});
  (blocking ? st.busy : st.checkpointing) = true;
  if (blocking) st.committing = to;
  self->request(st.storage, caf::infinite, write_atom_v, std::move(w))
      .then(
          [self, to, done, blocking](const std::vector<append_result>&) {
            auto& st = self->state;
            (blocking ? st.busy : st.checkpointing) = false;
            st.committed = to;
            done(nullptr);
            run_deferred(self);
          },
          [self, done, blocking](caf::error& e) {
            auto& st = self->state;
            (blocking ? st.busy : st.checkpointing) = false;
            done(&e);
            run_deferred(self);
          });
}

/// Runs `f` now, or once the commit in flight is done.
template <class F>
void when_idle(pointer self, F f) {
  if (self->state.busy || self->state.checkpointing)
    self->state.after_commit.push_back(std::move(f));
  else
    f();
}

void fail(pointer self, std::string why) {
  auto& st = self->state;
  st.current = phase::failed;
  st.error = std::move(why);
  // Keep the error where varvectl sees it; the cursor stays where it is.
  when_idle(self, [self] { commit(self, self->state.committed, {}, [](const caf::error*) {}); });
}

void schedule_continue(pointer self);

/// Records `why` as the last error and stores it with the cursor, where
/// varvectl sees it; the projection goes on as it was (one that failed keeps
/// the error it failed with). `done` runs once the cursor is stored (or its
/// write failed).
void record_error(pointer self, std::string why, std::function<void()> done) {
  auto& st = self->state;
  if (st.current == phase::failed) return done();
  st.error = std::move(why);
  when_idle(self, [self, done = std::move(done)] {
    commit(self, self->state.committed, {}, [self, done](const caf::error*) {
      schedule_continue(self);  // heads noted while the commit was in flight
      done();
    });
  });
}

/// Loads where the projection stopped, and whether it was paused. A stored
/// state that does not read still comes with a good position: the
/// projection goes on from it, the problem recorded as its error. A cursor
/// that cannot be read stops the projection in state "failed".
void load_checkpoint(pointer self) {
  auto& st = self->state;
  auto txn = st.store->read();
  if (!txn) return fail(self, "reading the checkpoint: " + txn.err().to_string());
  auto cur = txn->cursor_state(st.spec.name);
  if (!cur) return fail(self, "reading the checkpoint: " + cur.err().to_string());
  if (!*cur) return;
  st.position = st.committed = (*cur)->position;
  auto stored = stored_phase((*cur)->state);
  if (!stored)
    return record_error(self,
                        "the stored state of the checkpoint is ignored (going on from position " +
                            std::to_string(st.position) + "): " + stored.err().to_string(),
                        [] {});
  if (*stored == "paused") st.current = phase::paused;
}

/// Saves an at-least-once cursor (and the view writes that wait for it).
void checkpoint(pointer self) {
  auto& st = self->state;
  if (st.busy || st.checkpointing || st.position == st.committed) return;
  st.since_checkpoint = 0;
  commit(
      self, st.position, std::move(st.unsaved),
      [self](const caf::error* e) {
        auto& st = self->state;
        if (e) st.error = error_from(*e).to_string();
        // Reading went on meanwhile: save again if it passed another N.
        if (st.since_checkpoint >= st.spec.checkpoint_every) checkpoint(self);
      },
      false);
  st.unsaved.clear();
}

void schedule_continue(pointer self) {
  auto& st = self->state;
  if (st.continue_pending) return;
  st.continue_pending = true;
  self->send(self, continue_atom_v);
}

/// What to do after a batch: go on, retry the failed event, or apply the
/// failure policy.
void after_batch(pointer self, std::optional<batch_failure> failure, bool more) {
  auto& st = self->state;
  if (!failure) {
    st.attempts = 0;
    // Heads published while a commit was in flight were only noted in
    // st.head: they need a read as well.
    if (more || st.head > st.position)
      schedule_continue(self);
    else if (st.current == phase::catching_up)
      st.current = phase::live;
    return;
  }
  st.error = failure->err.to_string();
  if (st.attempts < st.spec.max_retries) {
    const auto delay = st.spec.retry_backoff * (1u << std::min(st.attempts, 16u));
    ++st.attempts;
    st.retry_pending = true;
    self->delayed_send(self, delay, retry_atom_v);
    return;
  }
  st.attempts = 0;
  if (st.spec.on_failure == failure_policy::stop) {
    fail(self, "position " + std::to_string(failure->position) + ": " + st.error);
    return;
  }
  // skip: the dead letter and the cursor past the event, in one transaction.
  nlohmann::json letter{{"stream", failure->stream},
                        {"type", failure->type},
                        {"version", failure->version},
                        {"error", st.error},
                        {"failed_us", now_us()}};
  std::vector<view_update> views = std::move(st.unsaved);
  st.unsaved.clear();
  views.push_back(view_update{dead_letter_view(st.spec.name), view_update::op::put,
                              position_key(failure->position), detail::json_text(letter)});
  const global_position past = failure->position;
  ++st.status.dead_letters;
  commit(self, past, std::move(views), [self, past](const caf::error* e) {
    auto& st = self->state;
    if (e) return fail(self, "writing a dead letter: " + error_from(*e).to_string());
    st.position = past;
    st.error.clear();
    schedule_continue(self);
  });
}

/// Reads and handles one batch after the cursor.
void process(pointer self) {
  auto& st = self->state;
  if (st.busy || st.retry_pending || st.current == phase::paused || st.current == phase::failed ||
      st.current == phase::stopped)
    return;
  auto txn = st.store->read();
  if (!txn) return fail(self, "reading the log: " + txn.err().to_string());
  const global_position head = txn->head();
  if (head > st.head || st.head_time == 0) {
    st.head = std::max(st.head, head);
    if (auto last = txn->event_at(head)) st.head_time = last->time;
  }
  if (st.position >= head) {
    if (st.current == phase::catching_up) st.current = phase::live;
    return;
  }

  view_batch batch(view_of(st), &*txn);
  std::optional<batch_failure> failure;
  global_position last = st.position;
  std::size_t handled = 0;
  auto stream_of = [&](const event_view& e) -> std::string_view {
    return stream_name_of(st, *txn, e.stream_id);
  };
  auto failed_at = [&](const delivered_event& d, error err) {
    failure = batch_failure{d.event.position, std::string(d.stream), std::string(d.event.type),
                            d.event.version, std::move(err)};
  };
  auto call = [&](auto&& f) -> result<void> {
    try {
      return f();
    } catch (const std::exception& ex) {
      return error{errc::rejected, std::string("the handler threw: ") + ex.what()};
    } catch (...) {
      return error{errc::rejected, "the handler threw"};
    }
  };

  if (st.spec.handle_batch) {
    // Views must outlive one visit: read them as a vector (kept bodies).
    std::vector<event_view>& events = st.events;
    std::vector<delivered_event>& group = st.group;
    group.clear();
    auto n = txn->read_log(st.position + 1, direction::forward, st.spec.batch_events, events);
    if (!n) return fail(self, "reading the log: " + n.err().to_string());
    // Names first (the cache may grow), then the views into it.
    for (const event_view& e : events)
      stream_of(e);
    for (const event_view& e : events) {
      const auto stream = stream_of(e);
      if (st.spec.filter.matches(stream, e.type)) group.push_back({e, stream});
    }
    if (!group.empty()) {
      auto r = call([&] { return st.spec.handle_batch(group, batch); });
      if (!r) {
        batch.rollback(0);
        // The group is retried as a whole; the policy applies to its first event.
        failed_at(group.front(), r.err());
        last = group.front().event.position - 1;
      }
    }
    if (!failure && !events.empty()) last = events.back().position;
    if (!failure) handled = group.size();
    if (!failure && !events.empty()) st.handled_time = events.back().time;
    group.clear();  // its views die with the transaction
    events.clear();
  } else {
    auto visit = [&](const event_view& e) {
      const auto stream = stream_of(e);
      if (st.spec.filter.matches(stream, e.type)) {
        const delivered_event d{e, stream};
        const auto mark = batch.savepoint();
        auto r = call([&] { return st.spec.handle(d, batch); });
        if (!r) {
          batch.rollback(mark);
          failed_at(d, r.err());
          return false;
        }
        ++handled;
      }
      last = e.position;
      st.handled_time = e.time;
      return true;
    };
    auto n = txn->scan_log(st.position + 1, direction::forward, st.spec.batch_events, visit);
    if (!n) return fail(self, "reading the log: " + n.err().to_string());
  }
  st.status.handled += handled;
  const bool more = !failure && last < head;

  if (st.spec.mode == delivery::exactly_once) {
    if (last == st.position && batch.updates().empty()) return after_batch(self, failure, more);
    commit(self, last, std::move(batch.updates()),
           [self, last, failure, more](const caf::error* e) mutable {
             auto& st = self->state;
             if (e) return fail(self, "committing the view: " + error_from(*e).to_string());
             st.position = last;
             after_batch(self, std::move(failure), more);
           });
    return;
  }
  // at-least-once
  for (auto& u : batch.updates())
    st.unsaved.push_back(std::move(u));
  st.since_checkpoint += last - st.position;
  st.position = last;
  if (st.since_checkpoint >= st.spec.checkpoint_every) {
    checkpoint(self);
  } else if (!st.checkpoint_armed && st.position != st.committed) {
    st.checkpoint_armed = true;
    self->delayed_send(self, st.spec.checkpoint_interval, checkpoint_atom_v);
  }
  after_batch(self, std::move(failure), more);
}

projection_actor::behavior_type projection_behavior(pointer self,
                                                    std::shared_ptr<const event_store> store,
                                                    storage_actor storage, projection_spec spec) {
  auto& st = self->state;
  st.spec = std::move(spec);
  st.store = std::move(store);
  st.storage = std::move(storage);
  if (st.spec.batch_events == 0) st.spec.batch_events = 1;

  load_checkpoint(self);
  self->request(st.storage, caf::infinite, subscribe_atom_v, caf::actor_cast<caf::actor>(self))
      .then(
          [self](std::uint64_t head) {
            self->state.head = std::max(self->state.head, head);
            process(self);
          },
          [self](caf::error& e) { fail(self, "subscribing: " + error_from(e).to_string()); });

  self->set_exit_handler([self](caf::exit_msg& msg) {
    // The stored state says "stopped" (the storage actor commits this
    // before it stops). At least once: the last checkpoint goes with it.
    // Exactly once: the cursor stays where it is stored, or where the
    // commit in flight (committed first) moves it; guarded, so it never
    // moves the cursor itself.
    auto& st = self->state;
    const phase was = st.current;
    if (was != phase::failed) st.current = phase::stopped;
    write_request w;
    if (st.spec.mode == delivery::at_least_once) {
      w.views = std::move(st.unsaved);
      w.cursors.push_back(cursor_update{st.spec.name, st.position, state_json(st), {}});
    } else {
      const global_position at = st.busy ? st.committing : st.committed;
      w.cursors.push_back(cursor_update{st.spec.name, at, state_json(st), at});
    }
    st.current = was;
    caf::anon_send(st.storage, write_atom_v, std::move(w));
    self->quit(msg.reason);
  });

  return {
      [self](committed_atom, std::uint64_t head) {
        auto& st = self->state;
        st.head = std::max(st.head, head);
        if (head <= st.position || st.busy || st.continue_pending || st.retry_pending) return;
        // Read after the notifications already queued: they only say how
        // far the log goes, and the read covers them all.
        ++st.status.wakeups;
        schedule_continue(self);
      },
      [self](status_atom) {
        auto& st = self->state;
        if (auto txn = st.store->read()) st.head = std::max(st.head, txn->head());
        return make_status(st);
      },
      [self](pause_atom) -> caf::result<projection_status> {
        auto promise = self->make_response_promise<projection_status>();
        when_idle(self, [self, promise]() mutable {
          auto& st = self->state;
          if (st.current != phase::failed) st.current = phase::paused;
          commit(self, st.committed, {}, [self, promise](const caf::error*) mutable {
            promise.deliver(make_status(self->state));
          });
        });
        return promise;
      },
      [self](resume_atom) -> caf::result<projection_status> {
        auto promise = self->make_response_promise<projection_status>();
        when_idle(self, [self, promise]() mutable {
          auto& st = self->state;
          st.current = phase::catching_up;
          st.error.clear();
          st.attempts = 0;
          commit(self, st.committed, {}, [self, promise](const caf::error*) mutable {
            process(self);
            promise.deliver(make_status(self->state));
          });
        });
        return promise;
      },
      [self](reset_atom, std::uint64_t to) -> caf::result<projection_status> {
        auto promise = self->make_response_promise<projection_status>();
        when_idle(self, [self, promise, to]() mutable {
          auto& st = self->state;
          st.unsaved.clear();
          if (st.current != phase::paused) st.current = phase::catching_up;
          st.error.clear();
          commit(self, to, {}, [self, promise, to](const caf::error* e) mutable {
            auto& st = self->state;
            if (!e) st.position = to;
            process(self);
            promise.deliver(make_status(st));
          });
        });
        return promise;
      },
      [self](rebuild_atom) -> caf::result<projection_status> {
        auto promise = self->make_response_promise<projection_status>();
        when_idle(self, [self, promise]() mutable {
          auto& st = self->state;
          st.unsaved.clear();
          st.current = phase::catching_up;
          st.error.clear();
          st.handled_time = 0;
          std::vector<view_update> clear{
              view_update{view_of(st), view_update::op::clear, {}, {}},
              view_update{dead_letter_view(st.spec.name), view_update::op::clear, {}, {}}};
          commit(self, 0, std::move(clear), [self, promise](const caf::error* e) mutable {
            auto& st = self->state;
            if (e)
              st.error = error_from(*e).to_string();
            else
              st.position = 0;
            process(self);
            promise.deliver(make_status(st));
          });
        });
        return promise;
      },
      [self](control_error_atom, std::string& why) -> caf::result<projection_status> {
        auto promise = self->make_response_promise<projection_status>();
        record_error(self, std::move(why),
                     [self, promise]() mutable { promise.deliver(make_status(self->state)); });
        return promise;
      },
      [self](continue_atom) {
        self->state.continue_pending = false;
        process(self);
      },
      [self](retry_atom) {
        self->state.retry_pending = false;
        process(self);
      },
      [self](checkpoint_atom) {
        self->state.checkpoint_armed = false;
        checkpoint(self);
      },
  };
}

}  // namespace

bool projection_filter::matches(std::string_view stream, std::string_view type) const {
  if (!event_types.empty() &&
      std::find(event_types.begin(), event_types.end(), type) == event_types.end())
    return false;
  if (categories.empty() && stream_prefixes.empty()) return true;
  for (const auto& c : categories)
    if (stream == c ||
        (stream.size() > c.size() && stream.starts_with(c) && stream[c.size()] == '-'))
      return true;
  for (const auto& p : stream_prefixes)
    if (stream.starts_with(p)) return true;
  return false;
}

void view_batch::put(std::string_view key, std::string_view value) {
  updates_.push_back(
      view_update{view_, view_update::op::put, std::string(key), std::string(value)});
}

void view_batch::erase(std::string_view key) {
  updates_.push_back(view_update{view_, view_update::op::erase, std::string(key), {}});
}

result<std::optional<std::string>> view_batch::get(std::string_view key) const {
  for (auto it = updates_.rbegin(); it != updates_.rend(); ++it) {
    if (it->view != view_) continue;
    if (it->kind == view_update::op::clear) return std::optional<std::string>{};
    if (it->key == key)
      return it->kind == view_update::op::put ? std::optional<std::string>{it->value}
                                              : std::optional<std::string>{};
  }
  if (!txn_) return std::optional<std::string>{};
  auto v = txn_->view_get(view_, key);
  if (!v) return std::move(v).err();
  return *v ? std::optional<std::string>{std::string(**v)} : std::optional<std::string>{};
}

std::string dead_letter_view(std::string_view name) {
  return "varve.dead_letters." + std::string(name);
}

projection_actor spawn_projection(caf::actor_system& sys, std::shared_ptr<const event_store> store,
                                  storage_actor storage, projection_spec spec) {
  return sys.spawn(projection_behavior, std::move(store), std::move(storage), std::move(spec));
}

}  // namespace varve
