#include "varve/remote/projection_host.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <chrono>
#include <exception>

#include <nlohmann/json.hpp>

#include <varve/actors/error.hpp>
#include <varve/actors/log.hpp>

namespace varve::remote {

namespace {

struct host_state {
  static inline const char* name = "varve.remote_projection";
  std::shared_ptr<const event_store> store;
  storage_actor storage;
  projection_spec spec;
  remote_projection_options opts;
  std::string where;

  service_actor service;
  bool connected = false;
  std::uint64_t generation = 0;  // bumped when a connection is lost
  std::chrono::milliseconds backoff{0};
  bool reading = false;            // a remote read in flight
  bool writing = false;            // a local commit in flight
  global_position committing = 0;  // where it moves the cursor
  bool stopping = false;
  bool failed = false;
  bool idle = true;  // live and waiting for a head

  global_position position = 0;           // committed in the local store
  std::optional<global_position> stored;  // the cursor as stored (for `expected`)
  global_position head = 0;
  std::string error;
  std::uint64_t handled = 0;
  std::uint64_t wakeups = 0;
  std::int64_t head_time = 0;
  std::int64_t handled_time = 0;

  const std::string& view() const { return spec.view.empty() ? spec.name : spec.view; }
  std::string phase() const {
    if (failed) return "failed";
    if (!connected) return "connecting";
    return position < head ? "catching_up" : "live";
  }
};

using pointer = remote_projection_actor::stateful_pointer<host_state>;

/// The state stored with the cursor once the host is at `at`: the same
/// keys as in-process projections (varvectl reads them).
std::string state_json(const host_state& st, global_position at) {
  const char* phase = st.failed      ? "failed"
                      : st.stopping  ? "stopped"
                      : at < st.head ? "catching_up"
                                     : "live";
  // The error may quote any bytes: those that are not UTF-8 become U+FFFD
  // (nlohmann's default would throw).
  return nlohmann::json{
      {"mode", "exactly_once"}, {"state", phase}, {"error", st.error}, {"source", st.where}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void process(pointer self);

void schedule_retry(pointer self) {
  auto& st = self->state;
  st.backoff =
      st.backoff.count() == 0 ? st.opts.min_backoff : std::min(st.backoff * 2, st.opts.max_backoff);
  self->delayed_send(self, st.backoff, retry_atom_v, st.generation);
}

/// The connection is gone (or useless): forget it and reconnect later.
void lost(pointer self, std::uint64_t generation, const std::string& why) {
  auto& st = self->state;
  if (generation != st.generation || !st.connected) return;
  ++st.generation;
  st.connected = false;
  st.reading = false;
  st.error = why;
  if (st.service) self->demonitor(st.service.address());
  st.service = nullptr;
  schedule_retry(self);
}

void fail(pointer self, std::string why) {
  auto& st = self->state;
  st.failed = true;
  st.error = std::move(why);
  log(log_level::error, "remote projection", "'" + st.spec.name + "' failed: " + st.error);
}

void try_connect(pointer self) {
  auto& st = self->state;
  client_options co;
  co.timeout = st.opts.request_timeout;
  // Blocking: this actor is detached.
  auto h = connect(self->system(), st.opts.host, st.opts.port, co);
  if (!h) {
    st.error = h.err().message();
    schedule_retry(self);
    return;
  }
  st.service = std::move(*h);
  st.connected = true;
  st.error.clear();
  self->monitor(st.service);
  const auto g = st.generation;
  self->request(st.service, st.opts.request_timeout, subscribe_atom_v,
                caf::actor_cast<caf::actor>(self))
      .then(
          [self, g](std::uint64_t head) {
            auto& st = self->state;
            if (g != st.generation) return;
            st.backoff = std::chrono::milliseconds(0);
            st.head = std::max(st.head, head);
            process(self);
          },
          [self, g](caf::error& e) { lost(self, g, error_from_remote(e).to_string()); });
}

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Hands a batch to the handler and commits view + cursor locally.
void apply(pointer self, std::vector<recorded_event> events) {
  auto& st = self->state;
  auto txn = st.store->read();
  if (!txn) return fail(self, "local read: " + txn.err().to_string());
  view_batch batch(st.view(), &*txn);
  std::vector<delivered_event> group;
  group.reserve(events.size());
  global_position last = st.position;
  for (const auto& e : events) {
    if (e.position != last + 1)
      return fail(self, "the remote log jumps from " + std::to_string(last) + " to " +
                            std::to_string(e.position));
    last = e.position;
    if (!st.spec.filter.matches(e.stream, e.type)) continue;
    event_view v;
    v.position = e.position;
    v.version = e.version;
    v.id = e.id;
    v.time = e.time;
    v.type = e.type;
    v.metadata = e.metadata;
    v.payload = e.payload;
    v.shredded = e.shredded;
    group.push_back(delivered_event{v, e.stream});
  }
  try {
    if (st.spec.handle_batch) {
      if (!group.empty()) {
        auto r = st.spec.handle_batch(group, batch);
        if (!r) return fail(self, r.err().to_string());
      }
    } else {
      for (const auto& d : group) {
        auto r = st.spec.handle(d, batch);
        if (!r)
          return fail(self,
                      "event " + std::to_string(d.event.position) + ": " + r.err().to_string());
      }
    }
  } catch (const std::exception& ex) {
    return fail(self, std::string("handler threw: ") + ex.what());
  }
  const auto handled = group.size();
  const auto newest_time = events.empty() ? 0 : events.back().time;
  write_request w;
  w.views = std::move(batch.updates());
  w.cursors.push_back(
      cursor_update{st.spec.name, last, state_json(st, last), st.stored.value_or(0)});
  st.writing = true;
  st.committing = last;
  self->request(st.storage, caf::infinite, write_atom_v, std::move(w))
      .then(
          [self, last, handled, newest_time](const std::vector<append_result>&) {
            auto& st = self->state;
            st.writing = false;
            st.position = last;
            st.stored = last;
            st.handled += handled;
            st.handled_time = newest_time;
            process(self);
          },
          [self](caf::error& e) {
            self->state.writing = false;
            fail(self, "local commit: " + error_from(e).to_string());
          });
}

void process(pointer self) {
  auto& st = self->state;
  if (st.failed || !st.connected || st.reading || st.writing) return;
  if (st.position >= st.head) {
    st.idle = true;
    return;
  }
  if (st.idle) {
    st.idle = false;
    ++st.wakeups;
  }
  st.reading = true;
  const auto g = st.generation;
  const auto head_before = st.head;
  self->request(st.service, st.opts.request_timeout, read_log_atom_v, st.position + 1, false,
                static_cast<std::uint64_t>(std::max<std::size_t>(st.spec.batch_events, 1)))
      .then(
          [self, g, head_before](event_batch& b) {
            auto& st = self->state;
            if (g != st.generation) return;
            st.reading = false;
            if (b.events.empty()) {
              // Nothing past our position when the service read; a head
              // that arrived meanwhile still needs a read of its own.
              if (st.head > head_before) return process(self);
              st.head = st.position;
              st.idle = true;
              return;
            }
            st.head = std::max(st.head, b.head);
            st.head_time = std::max(st.head_time, b.events.back().time);
            apply(self, std::move(b).take());
          },
          [self, g](caf::error& e) { lost(self, g, error_from_remote(e).to_string()); });
}

remote_projection_actor::behavior_type host_behavior(pointer self,
                                                     std::shared_ptr<const event_store> store,
                                                     storage_actor storage, projection_spec spec,
                                                     remote_projection_options opts) {
  auto& st = self->state;
  st.store = std::move(store);
  st.storage = std::move(storage);
  st.spec = std::move(spec);
  st.opts = std::move(opts);
  st.where = st.opts.host + ":" + std::to_string(st.opts.port);
  if (st.spec.mode != delivery::exactly_once) {
    fail(self, "remote projection hosts run exactly-once projections only");
  } else if (!st.spec.handle && !st.spec.handle_batch) {
    fail(self, "projection '" + st.spec.name + "' has no handler");
  } else if (auto txn = st.store->read(); !txn) {
    fail(self, "local read: " + txn.err().to_string());
  } else if (auto cur = txn->cursor(st.spec.name); !cur) {
    fail(self, "local cursor: " + cur.err().to_string());
  } else {
    st.stored = *cur;
    st.position = cur->value_or(0);
    st.head = st.position;
    self->send(self, retry_atom_v, st.generation);
  }
  // Stopped: the stored state says so. The cursor stays where it is stored,
  // or where the local commit in flight (committed first) moves it; the
  // write is guarded, so it never moves the cursor itself.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& st = self->state;
    if (st.stored || st.writing) {
      const global_position at = st.writing ? st.committing : *st.stored;
      st.stopping = true;
      write_request w;
      w.cursors.push_back(cursor_update{st.spec.name, at, state_json(st, at), at});
      caf::anon_send(st.storage, write_atom_v, std::move(w));
    }
    self->quit(msg.reason);
  });
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    if (st.service && msg.source == st.service.address())
      lost(self, st.generation, "the store service went away: " + caf::to_string(msg.reason));
  });
  return {
      [self](committed_atom, std::uint64_t head) {
        auto& st = self->state;
        st.head = std::max(st.head, head);
        st.head_time = std::max(st.head_time, now_us());
        process(self);
      },
      [self](status_atom) -> projection_status {
        auto& st = self->state;
        projection_status s;
        s.name = st.spec.name;
        s.mode = "exactly_once";
        s.state = st.phase();
        s.error = st.error;
        s.set_progress(st.position, st.head, st.head_time, st.handled_time);
        s.handled = st.handled;
        s.wakeups = st.wakeups;
        return s;
      },
      [self](continue_atom) { process(self); },
      [self](retry_atom, std::uint64_t generation) {
        auto& st = self->state;
        if (st.failed || st.connected || generation != st.generation) return;
        try_connect(self);
      },
  };
}

}  // namespace

remote_projection_actor spawn_remote_projection(caf::actor_system& sys,
                                                std::shared_ptr<const event_store> local_store,
                                                storage_actor local_storage, projection_spec spec,
                                                remote_projection_options opts) {
  return sys.spawn<caf::detached>(host_behavior, std::move(local_store), std::move(local_storage),
                                  std::move(spec), std::move(opts));
}

}  // namespace varve::remote
