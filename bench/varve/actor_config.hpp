// The actor system of the Varve benchmarks: the configuration TOOLCHAIN.md
// measured best for the storage-actor path on 2 cores (sharing scheduler,
// one thread; the storage actor itself is detached), Varve's types and
// errors registered, and a blocking request helper for the driving thread.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/scoped_actor.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <varve/actors/error.hpp>
#include <varve/actors/storage_actor.hpp>

namespace varve::bench::vv {

struct actor_config : caf::actor_system_config {
  actor_config() {
    set("scheduler.policy", caf::atom("sharing"));
    set("scheduler.max-threads", 1);
    set("logger.console", caf::atom("none"));
    add_message_types<caf::id_block::varve>();
    varve::add_error_category(*this);
  }
};

/// Sends `args` to `to` from a scoped actor and waits for an answer of type
/// R; throws with the error otherwise.
template <class R, class Handle, class... Args>
R ask(caf::scoped_actor& self, const Handle& to, Args&&... args) {
  std::optional<R> out;
  std::string failure;
  self->request(to, caf::infinite, std::forward<Args>(args)...)
      .receive([&](const R& r) { out = r; },
               [&](caf::error& e) { failure = varve::error_from(e).to_string(); });
  if (!out) throw std::runtime_error("request failed: " + failure);
  return std::move(*out);
}

}  // namespace varve::bench::vv
