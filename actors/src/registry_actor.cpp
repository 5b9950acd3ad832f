// The registry actor: routes each command to the live actor of its id,
// spawning one on demand, and answers the sender with the actor's answer.
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/message_view.hpp>
#include <caf/stateful_actor.hpp>

#include "varve/actors/aggregate.hpp"

namespace varve::detail {

namespace {

struct registry_state {
  static inline const char* name = "varve.registry";
  registry_setup setup;
  std::optional<live_aggregates> live;
};

using registry_pointer = caf::stateful_actor<registry_state>*;

/// The live actor of `id`, spawned (after passivating the least recently
/// used ones when the registry is full) when it has none.
caf::actor actor_for(registry_pointer self, const std::string& id) {
  auto& live = *self->state.live;
  if (auto found = live.find(id)) return found;
  for (auto& victim : live.make_room())
    self->send(victim, passivate_atom_v);
  auto child = self->state.setup.spawn(*self, id);
  self->monitor(child);
  live.add(id, child);
  return child;
}

void dispatch(registry_pointer self, pending_command job) {
  if (self->state.live->leaving(job.id)) {  // one actor per stream: after it is down
    self->state.live->hold(std::move(job));
    return;
  }
  auto child = actor_for(self, job.id);
  const auto addr = child.address();
  auto command = job.command;
  const auto key = self->state.live->track(addr, std::move(job));
  self->request(child, caf::infinite, std::move(command))
      .then(
          [self, addr, key](const command_reply& reply) {
            if (auto j = self->state.live->take(addr, key)) j->promise.deliver(reply);
          },
          [self, addr, key](caf::error& err) {
            auto j = self->state.live->take(addr, key);
            if (!j) return;  // answered when the actor crashed
            // The actor had quit (passivated) before it took the command:
            // nothing was applied, so a fresh actor can take it.
            if (err == caf::sec::request_receiver_down && self->state.live->bounce(*j, addr)) {
              dispatch(self, std::move(*j));
              return;
            }
            j->promise.deliver(err);
          });
}

/// (command_atom, id, C) for a command type C of the aggregate: anything
/// else is an unexpected message.
caf::result<caf::message> route(registry_pointer self, caf::message_view& view) {
  auto& request = view.content();
  if (request.size() != 3 || !request.match_element<caf::atom_value>(0) ||
      request.get_as<caf::atom_value>(0) != command_atom::value ||
      !request.match_element<std::string>(1))
    return caf::make_error(caf::sec::unexpected_message);
  auto command = self->state.setup.take_command(request);
  if (command.empty()) return caf::make_error(caf::sec::unexpected_message);
  dispatch(self, {std::move(request.get_mutable_as<std::string>(1)), std::move(command),
                  self->make_response_promise(), 0});
  return caf::delegated<caf::message>{};
}

caf::behavior registry_behavior(registry_pointer self, registry_setup setup) {
  self->state.live.emplace(setup.max_alive);
  self->state.setup = std::move(setup);
  self->set_default_handler(
      [self](caf::scheduled_actor*, caf::message_view& view) { return route(self, view); });
  self->set_down_handler([self](caf::down_msg& msg) {
    auto after = self->state.live->down(msg.source, msg.reason);
    for (auto& job : after.resume)
      dispatch(self, std::move(job));
    for (auto& job : after.failed)
      job.promise.deliver(make_error(errc::unavailable,
                                     "the aggregate actor of '" + self->state.setup.category + "-" +
                                         job.id + "' stopped (" + caf::to_string(msg.reason) +
                                         "); the command may or may not have been applied"));
  });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    for (auto& child : self->state.live->actors())
      self->send_exit(child, msg.reason);
    self->quit(msg.reason);
  });
  return {
      [self](stats_atom) { return self->state.live->stats(); },
  };
}

}  // namespace

caf::actor spawn_registry(caf::actor_system& sys, registry_setup setup) {
  return sys.spawn(registry_behavior, std::move(setup));
}

}  // namespace varve::detail
