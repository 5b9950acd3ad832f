// One blocking request to an actor of another process, for the blocking
// client calls of varve::remote (client.hpp, commands.hpp).
#pragma once

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include <chrono>
#include <optional>
#include <utility>

#include <varve/storage/error.hpp>

namespace varve::remote {

error error_from_remote(const caf::error& e);  // client.hpp

namespace detail {

/// Sends `xs` to `dest` and waits at most `timeout` for the answer: the
/// answer, or the error as error_from_remote makes it (a vanished or silent
/// peer: errc::unavailable).
template <class T, class Handle, class... Ts>
result<T> ask(caf::actor_system& sys, const Handle& dest, std::chrono::milliseconds timeout,
              Ts&&... xs) {
  if (!dest) return error{errc::unavailable, "not connected to a store service"};
  caf::scoped_actor self{sys};
  std::optional<result<T>> out;
  self->request(dest, timeout, std::forward<Ts>(xs)...)
      .receive([&](T& x) { out.emplace(std::move(x)); },
               [&](caf::error& e) { out.emplace(error_from_remote(e)); });
  return std::move(*out);
}

}  // namespace detail
}  // namespace varve::remote
