// The typed interfaces of aggregate actors and registries, derived from an
// aggregate's command type. Part of varve/actors/aggregate.hpp.
#pragma once

#include <caf/make_message.hpp>
#include <caf/message.hpp>
#include <caf/replies_to.hpp>
#include <caf/type_erased_tuple.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "varve/actors/type_ids.hpp"

namespace varve {

/// A command as one message element, for senders in this process
/// (varve::runtime sends these): it needs no inspect overload and no type
/// id, and cannot leave the process.
template <class Command>
struct local_command {
  Command value;
};

}  // namespace varve

namespace caf {
template <class Command>
struct allowed_unsafe_message_type<varve::local_command<Command>> : std::true_type {};
}  // namespace caf

namespace varve {

struct command_reply;
struct registry_stats;
struct aggregate_info;

namespace detail {

/// The command types of an aggregate: the alternatives of a std::variant,
/// or the one type.
template <class T>
struct alternatives {
  using type = caf::detail::type_list<T>;
};
template <class... Ts>
struct alternatives<std::variant<Ts...>> {
  using type = caf::detail::type_list<Ts...>;
};

template <class A>
using commands_of = typename alternatives<typename A::command>::type;

template <class Command, class List = typename alternatives<Command>::type>
struct aggregate_interface;
template <class Command, class... Cs>
struct aggregate_interface<Command, caf::detail::type_list<Cs...>> {
  using type = caf::typed_actor<
      typename caf::replies_to<command_atom, Cs>::template with<command_reply>...,
      typename caf::replies_to<command_atom, local_command<Command>>::template with<command_reply>,
      caf::replies_to<stats_atom>::with<aggregate_info>, caf::reacts_to<passivate_atom>,
      caf::reacts_to<passivate_atom, std::uint64_t>>;
};

/// The command_taker of a registry (see registry.hpp) of an aggregate
/// whose command type is Command, with alternatives Cs: moves the command
/// out of (command_atom, id, C) or (command_atom, id, local_command) into
/// (command_atom, local_command), so that commands need no inspect overload
/// on their way to the aggregate actor.
template <class Command, class... Cs>
caf::message take_command(caf::type_erased_tuple& request, caf::detail::type_list<Cs...>) {
  using boxed = local_command<Command>;
  if (request.match_element<boxed>(2))
    return caf::make_message(command_atom_v, std::move(request.get_mutable_as<boxed>(2)));
  caf::message out;
  auto take = [&](auto tag) {
    using command = typename decltype(tag)::type;
    if (!out.empty() || !request.match_element<command>(2)) return;
    out = caf::make_message(command_atom_v,
                            boxed{Command{std::move(request.get_mutable_as<command>(2))}});
  };
  (take(std::type_identity<Cs>{}), ...);
  return out;
}

template <class Command, class List = typename alternatives<Command>::type>
struct registry_interface;
template <class Command, class... Cs>
struct registry_interface<Command, caf::detail::type_list<Cs...>> {
  using type = caf::typed_actor<
      typename caf::replies_to<command_atom, std::string, Cs>::template with<command_reply>...,
      typename caf::replies_to<command_atom, std::string,
                               local_command<Command>>::template with<command_reply>,
      caf::replies_to<stats_atom>::with<registry_stats>>;
};

}  // namespace detail
}  // namespace varve
