// Commands to aggregates served by a store service in another process.
//
//   auto c = varve::remote::client::open(sys, "127.0.0.1", port).value();
//   auto accounts = varve::remote::registry<bank::account>(c, "account");
//   auto r = varve::remote::send_command(c, *accounts, "alice", bank::deposit{10});
//
// The answer is the same as in process: a command_reply, or the aggregate's
// domain error (errc::rejected with its message), errc::shredded for a
// forgotten stream, errc::unavailable when the service is gone or silent.
// The command types travel over the network: register them (and the
// remote block, see service.hpp) in a type-id block on both sides.
#pragma once

#include <caf/actor_cast.hpp>

#include <string>

#include <varve/actors/aggregate.hpp>

#include "varve/remote/client.hpp"
#include "varve/remote/detail/ask.hpp"

namespace varve::remote {

/// The registry of aggregate type A that the service serves under `type`;
/// errc::not_found when it serves none of that name. The handle stays valid
/// while the service runs; after a restart, ask again.
template <class A>
result<registry_actor<A>> registry(client& c, const std::string& type) {
  auto h = c.aggregate(type);
  if (!h) return std::move(h).err();
  return caf::actor_cast<registry_actor<A>>(std::move(*h));
}

/// Sends `cmd` to aggregate `id` through `r` (a registry_actor<A> from
/// registry()) and waits for the answer (at most the client's timeout).
template <class Registry, class Command>
result<command_reply> send_command(client& c, const Registry& r, const std::string& id,
                                   Command cmd) {
  return detail::ask<command_reply>(c.system(), r, c.timeout(), command_atom_v, id, std::move(cmd));
}

}  // namespace varve::remote
