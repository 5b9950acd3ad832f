// How an aggregate's snapshot state is stored: as JSON when the state type
// has a JSON form (VARVE_JSON, varve/actors/codec.hpp), else in CAF's binary
// form over its inspect overload. Part of varve/actors/aggregate.hpp.
//
// Changing a state type's form (adding VARVE_JSON to a state that had only
// inspect, or changing its fields) makes older snapshots not decode: they
// are ignored and the stream is replayed from its events. Bump
// snapshot_schema with such a change so that the reason is logged as a
// schema change.
#pragma once

#include <caf/detail/type_traits.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "varve/actors/binary_codec.hpp"
#include "varve/actors/codec.hpp"

namespace varve::detail {

template <class State>
constexpr bool state_storable =
    json_convertible<State> || caf::detail::is_inspectable<caf::serializer, State>::value;

/// The stored form of `s` into `out`; false when it cannot be encoded.
template <class State>
bool save_state(const State& s, std::string& out) {
  static_assert(state_storable<State>,
                "varve: an aggregate that declares snapshot_schema needs a state with a JSON "
                "form: VARVE_JSON(state, field...) (or a CAF inspect overload)");
  if constexpr (json_convertible<State>)
    return json_format::save(s, out);
  else if constexpr (state_storable<State>)
    return caf_save(s, out);
  else
    return false;
}

/// The state stored in `bytes`; std::nullopt when they do not decode.
template <class State>
std::optional<State> load_state(std::string_view bytes) {
  if constexpr (json_convertible<State>)
    return json_format::load<State>(bytes);
  else if constexpr (state_storable<State>)
    return caf_load<State>(bytes);
  else
    return std::nullopt;
}

}  // namespace varve::detail
