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

/// Whether a stored JSON state has the fields State has now. VARVE_JSON
/// reads a missing field as its default, which suits events but not a
/// snapshot: a field added to the state since the snapshot was written
/// would start from its default instead of from the events.
template <class State>
bool same_fields(const nlohmann::json& stored) {
  nlohmann::json now;
  try {
    now = nlohmann::json(State{});
  } catch (const nlohmann::json::exception&) {
    return false;
  }
  if (!stored.is_object() || !now.is_object()) return stored.type() == now.type();
  if (stored.size() != now.size()) return false;
  for (const auto& [key, value] : now.items())
    if (!stored.contains(key)) return false;
  return true;
}

/// The state stored in `bytes`; std::nullopt when they do not decode, or
/// (JSON) when their fields are not State's.
template <class State>
std::optional<State> load_state(std::string_view bytes) {
  if constexpr (json_convertible<State>) {
    auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
    if (j.is_discarded() || !same_fields<State>(j)) return std::nullopt;
    try {
      return j.template get<State>();
    } catch (const nlohmann::json::exception&) {
      return std::nullopt;
    }
  } else if constexpr (state_storable<State>)
    return caf_load<State>(bytes);
  else
    return std::nullopt;
}

}  // namespace varve::detail
