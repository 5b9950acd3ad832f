#include "varve/projections/manager.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <set>

#include "varve/actors/error.hpp"
#include "varve/actors/log.hpp"

namespace varve {

namespace {

struct manager_state {
  static inline const char* name = "varve.projection_manager";
  std::shared_ptr<const event_store> store;
  storage_actor storage;
  std::vector<std::pair<std::string, projection_actor>> projections;
  std::chrono::milliseconds poll_interval{500};
  global_position seen_head = 0;
  std::set<std::string> carrying_out;  // control requests sent, not yet answered
  bool stopping = false;
  std::size_t running = 0;
  caf::error exit_reason;
  bool nudge = true;  // the log is `store`: tell the projections of its head
};

using pointer = projection_manager::stateful_pointer<manager_state>;

const projection_actor* find(const manager_state& st, const std::string& name) {
  for (const auto& [n, p] : st.projections)
    if (n == name) return &p;
  return nullptr;
}

/// Forwards a request to the projection `name`, answering not_found for
/// unknown names.
template <class... Ts>
caf::result<projection_status> forward(pointer self, const std::string& name, Ts... xs) {
  const projection_actor* p = find(self->state, name);
  if (!p) return make_error(errc::not_found, "no projection named '" + name + "'");
  return self->delegate(*p, xs...);
}

/// Erases the control request of `name` (carried out, or refused), unless
/// varvectl replaced it meanwhile (the newer one is applied at the next poll).
void erase_request(pointer self, const std::string& name, const std::string& text) {
  write_request erase;
  erase.views.push_back(
      view_update{std::string(control_view), view_update::op::erase_if_equal, name, text});
  self->request(self->state.storage, caf::infinite, write_atom_v, std::move(erase))
      .then(
          [self, name](const std::vector<append_result>&) { self->state.carrying_out.erase(name); },
          [self, name](caf::error& e) {
            self->state.carrying_out.erase(name);
            log(log_level::error, "projection manager",
                "erasing the control request of projection '" + name +
                    "' failed: " + error_from(e).to_string());
          });
}

/// Has projection `p` carry out the control request `text` left for it
/// under `name`, then erases the request. A malformed request is not
/// carried out: the projection records why as its last error (where the
/// manager's listing and varvectl show it), then the request is erased.
void carry_out(pointer self, const projection_actor& p, const std::string& name,
               const std::string& text) {
  auto done = [self, name, text](const projection_status&) { erase_request(self, name, text); };
  auto report = [self, name, text](caf::error& e) {
    log(log_level::error, "projection manager",
        "control request for projection '" + name + "' failed: " + error_from(e).to_string());
    erase_request(self, name, text);
  };
  auto request = parse_control_request(text);
  if (!request) {
    log(log_level::warning, "projection manager",
        "control request for projection '" + name + "' ignored: " + request.err().to_string());
    self->request(p, caf::infinite, control_error_atom_v,
                  "control request ignored: " + request.err().to_string())
        .then(done, report);
    return;
  }
  switch (request->command) {
    case control_command::pause:
      return self->request(p, caf::infinite, pause_atom_v).then(done, report);
    case control_command::resume:
      return self->request(p, caf::infinite, resume_atom_v).then(done, report);
    case control_command::rebuild:
      return self->request(p, caf::infinite, rebuild_atom_v).then(done, report);
    case control_command::reset:
      return self->request(p, caf::infinite, reset_atom_v, request->position).then(done, report);
  }
}

/// Applies the requests varvectl left in the control view. A request is
/// erased once its projection has carried it out (a rebuild: the view and
/// cursor are cleared), so that a request gone means a request done.
void apply_control_requests(pointer self) {
  auto& st = self->state;
  auto txn = st.store->read();
  if (!txn) return;
  if (st.nudge && txn->head() > st.seen_head) {  // appends by other processes, too
    st.seen_head = txn->head();
    for (const auto& [name, p] : st.projections)
      self->send(p, committed_atom_v, st.seen_head);
  }
  std::vector<std::pair<std::string, std::string>> requests;  // name, request
  auto visit = [&](std::string_view key, std::string_view value) {
    requests.emplace_back(std::string(key), std::string(value));
    return true;
  };
  if (!txn->scan_view(control_view, "", visit)) return;
  for (const auto& [name, text] : requests) {
    const projection_actor* p = find(st, name);
    if (!p) continue;                                    // for another application's projection
    if (!st.carrying_out.insert(name).second) continue;  // sent already
    carry_out(self, *p, name, text);
  }
}

projection_manager::behavior_type manager_behavior(pointer self,
                                                   std::shared_ptr<const event_store> store,
                                                   storage_actor storage,
                                                   std::vector<projection_spec> specs,
                                                   projection_spawner spawn,
                                                   std::chrono::milliseconds poll_interval) {
  auto& st = self->state;
  st.store = std::move(store);
  st.storage = std::move(storage);
  st.poll_interval = poll_interval;
  st.nudge = !spawn;
  if (!spawn)
    spawn = [store = st.store, storage = st.storage](caf::actor_system& sys, projection_spec spec) {
      return spawn_projection(sys, store, storage, std::move(spec));
    };
  for (auto& spec : specs) {
    std::string name = spec.name;
    auto p = spawn(self->system(), std::move(spec));
    self->monitor(p);
    st.projections.emplace_back(std::move(name), std::move(p));
  }
  // Stopping: the projections stop first, so that their last checkpoints
  // reach the storage actor before anything sent after the manager is gone.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& st = self->state;
    if (st.stopping) return;
    st.stopping = true;
    st.exit_reason = msg.reason;
    st.running = st.projections.size();
    for (const auto& [name, p] : st.projections)
      self->send_exit(p, msg.reason);
    if (st.running == 0) self->quit(msg.reason);
  });
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    for (const auto& [name, p] : st.projections)
      if (p.address() == msg.source && !st.stopping)
        log(log_level::error, "projection manager",
            "projection '" + name + "' stopped: " + caf::to_string(msg.reason));
    if (st.stopping && --st.running == 0) self->quit(st.exit_reason);
  });
  apply_control_requests(self);
  self->delayed_send(self, st.poll_interval, poll_atom_v);
  return {
      [self](list_atom) -> caf::result<std::vector<projection_status>> {
        auto promise = self->make_response_promise<std::vector<projection_status>>();
        auto& projections = self->state.projections;
        auto out = std::make_shared<std::vector<projection_status>>(projections.size());
        auto remaining = std::make_shared<std::size_t>(projections.size());
        if (projections.empty()) promise.deliver(*out);
        for (std::size_t i = 0; i < projections.size(); ++i)
          self->request(projections[i].second, caf::infinite, status_atom_v)
              .then(
                  [=](const projection_status& s) mutable {
                    (*out)[i] = s;
                    if (--*remaining == 0) promise.deliver(*out);
                  },
                  [=](caf::error& e) mutable {
                    (*out)[i].name = self->state.projections[i].first;
                    (*out)[i].state = "stopped";
                    (*out)[i].error = error_from(e).to_string();
                    if (--*remaining == 0) promise.deliver(*out);
                  });
        return promise;
      },
      [self](status_atom, const std::string& name) { return forward(self, name, status_atom_v); },
      [self](pause_atom, const std::string& name) { return forward(self, name, pause_atom_v); },
      [self](resume_atom, const std::string& name) { return forward(self, name, resume_atom_v); },
      [self](rebuild_atom, const std::string& name) { return forward(self, name, rebuild_atom_v); },
      [self](reset_atom, const std::string& name, std::uint64_t to) {
        return forward(self, name, reset_atom_v, to);
      },
      [self](poll_atom) {
        apply_control_requests(self);
        self->delayed_send(self, self->state.poll_interval, poll_atom_v);
      },
  };
}

}  // namespace

projection_manager spawn_projection_manager(caf::actor_system& sys,
                                            std::shared_ptr<const event_store> store,
                                            storage_actor storage,
                                            std::vector<projection_spec> specs,
                                            std::chrono::milliseconds poll_interval) {
  return sys.spawn(manager_behavior, std::move(store), std::move(storage), std::move(specs),
                   projection_spawner{}, poll_interval);
}

projection_manager spawn_projection_manager(caf::actor_system& sys,
                                            std::shared_ptr<const event_store> store,
                                            storage_actor storage,
                                            std::vector<projection_spec> specs,
                                            projection_spawner spawn,
                                            std::chrono::milliseconds poll_interval) {
  return sys.spawn(manager_behavior, std::move(store), std::move(storage), std::move(specs),
                   std::move(spawn), poll_interval);
}

}  // namespace varve
